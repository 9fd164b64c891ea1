#!/usr/bin/env bash
# Packs the Debian 12 packages ditrun builds against into .devdeps/devdeps.tar.xz, for a machine with no
# network and none of them installed (the GPU machine, Ubuntu 24.04; scripts/gpu_check.sh unpacks it).
# The tarball is a prefix in Debian's layout (usr/include, usr/lib/x86_64-linux-gnu, ...): headers, shared
# libraries with the unversioned .so links and the openblas links Debian's postinst makes, pkg-config and
# CMake config files rewritten to find things relative to their own location. No docs, man pages, static
# libraries, or OpenCV (optional: the evaluator is left out there). pkgconf comes along for machines
# without pkg-config. glibc, libstdc++ and libgcc_s are not bundled: the target's are newer.
# Usage: scripts/device_bundle.sh     (runs on Debian 12; needs apt-get download and dpkg-deb, not root)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/.devdeps/devdeps.tar.xz"
pkgs=(
  libopenblas0-pthread libopenblas-pthread-dev libgfortran5 libquadmath0  # CPU GEMMs (+ OpenBLAS's Fortran runtime)
  libsentencepiece0 libsentencepiece-dev                                  # T5 tokenizer
  libicu72 libicu-dev                                                     # CLIP tokenizer
  libcli11-dev catch2 nlohmann-json3-dev                                  # header-only
  libstb0 libstb-dev                                                      # PNG writing
  pkgconf-bin libpkgconf3                                                 # pkg-config, if the target lacks it
)
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/debs" "$tmp/prefix"
(cd "$tmp/debs" && apt-get download -q "${pkgs[@]}" >/dev/null)
for deb in "$tmp"/debs/*.deb; do
  dpkg-deb -x "$deb" "$tmp/prefix"
  dpkg-deb -f "$deb" Package Version | paste -sd' ' >>"$tmp/prefix/PACKAGES"
done

p="$tmp/prefix"
lib=usr/lib/x86_64-linux-gnu
# Keep: headers, shared libraries, pkg-config/CMake files, licences. ICU: only the common + data libraries
# (icu-uc); OpenBLAS: libopenblas only (its libblas/liblapack shims and LAPACK copy are not linked).
find "$p/usr/share/doc" -type f ! -name copyright -delete
rm -rf "$p/usr/share/man" "$p/usr/share/lintian" "$p/usr/share/icu" "$p/$lib/icu" "$p/usr/share/Catch2" \
  "$p"/usr/include/catch2/catch_reporter_*.hpp "$p/usr/include/sentencepiece_trainer.h"
find "$p" \( -name '*.a' -o -name 'libicu[it]*' -o -name 'icu-i18n.pc' -o -name 'icu-io.pc' \
  -o -name 'libblas.so*' -o -name 'liblapack.so*' -o -name 'blas-openblas.pc' -o -name 'lapack-openblas.pc' \) -delete
# Catch2's config imports Catch2WithMain from a static library that is not kept; ditrun links Catch2::Catch2.
rm -f "$p/usr/lib/cmake/Catch2/Catch2Targets-none.cmake"
find "$p" -depth -type d -empty -delete

# The links update-alternatives makes for libopenblas-pthread-dev (the pthread variant as "the" OpenBLAS).
ob=openblas-pthread
ln -s "$ob/libopenblas.so.0" "$p/$lib/libopenblas.so.0"
ln -s "$ob/libopenblas.so" "$p/$lib/libopenblas.so"
for h in cblas.h f77blas.h openblas_config.h; do ln -s "$ob/$h" "$p/usr/include/x86_64-linux-gnu/$h"; done
cp "$p/$lib/$ob/pkgconfig/openblas.pc" "$p/$lib/pkgconfig/openblas.pc"
mkdir -p "$p/$lib/cmake/openblas"
cp "$p/$lib/$ob/cmake/openblas/"*.cmake "$p/$lib/cmake/openblas/"
ln -s pkgconf "$p/usr/bin/pkg-config"

# ICU's 31 MB data library would take 7 MB of the device call's 64 MiB; an empty data package serves
# (scripts/icu_stub/icudata_stub.c says why).
icudata="$(readlink -f "$p/$lib/libicudata.so.72")"
gcc -shared -fPIC -O2 -Wl,-soname,libicudata.so.72 -o "$icudata" "$root/scripts/icu_stub/icudata_stub.c"

# Absolute /usr paths in pkg-config and CMake files become paths relative to the file itself, so the
# prefix works wherever it is unpacked: ${pcfiledir} (pkg-config, pkgconf) and CMAKE_CURRENT_LIST_DIR.
relocate() {  # <file> <variable naming the file's folder>
  local f=$1 var=$2 rel
  rel="$(realpath --relative-to="$(dirname "$f")" "$p/usr")"
  sed -i -E "s#(=[[:space:]]*)/usr(/|\$)#\1\${$var}/$rel\2#g; s#^(SET\([A-Za-z_]+ )/usr/#\1\${$var}/$rel/#" "$f"
}
find "$p" -name '*.pc' -print0 | while IFS= read -r -d '' f; do relocate "$f" pcfiledir; done
for f in "$p/$lib/$ob/cmake/openblas/OpenBLASConfig.cmake" "$p/$lib/cmake/openblas/OpenBLASConfig.cmake"; do
  relocate "$f" CMAKE_CURRENT_LIST_DIR
done
if grep -rlE '=[[:space:]]*/usr|^SET\([A-Za-z_]+ /usr' --include='*.pc' --include='OpenBLASConfig.cmake' "$p"; then
  echo "device_bundle: absolute /usr paths left in the files above" >&2; exit 1
fi

mkdir -p "$(dirname "$out")"
tar -C "$p" --owner=0 --group=0 --numeric-owner --sort=name -cf - . | xz -9e -T0 >"$out.tmp"
mv "$out.tmp" "$out"
echo "device_bundle: $(wc -l <"$p/PACKAGES") packages, $(du -sh --apparent-size "$p" | cut -f1) unpacked"
echo "device_bundle: $out $(du -h --apparent-size "$out" | cut -f1) ($(stat -c %s "$out") bytes)"
