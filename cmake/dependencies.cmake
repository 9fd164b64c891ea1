# Third-party dependencies, all from Debian 12 packages (scripts/install_deps.sh installs them).
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 REQUIRED)

set(BLA_VENDOR OpenBLAS)
find_package(BLAS REQUIRED)
find_path(CBLAS_INCLUDE_DIR cblas.h PATHS /usr/include/x86_64-linux-gnu/openblas-pthread /usr/include/openblas
          REQUIRED)

pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
find_path(STB_INCLUDE_DIR stb/stb_image_write.h REQUIRED)
find_library(STB_LIBRARY stb REQUIRED)

# OpenCV (evaluate/): only core, imgproc and imgcodecs. Debian ships OpenCVConfig.cmake in libopencv-dev,
# which drags in ~150 packages (GUI, video, dnn), so the three modules are located directly instead.
find_path(OpenCV_INCLUDE_DIRS opencv2/core.hpp PATH_SUFFIXES opencv4 REQUIRED)
set(OpenCV_LIBS)
foreach(m core imgproc imgcodecs)
  find_library(OpenCV_${m}_LIBRARY opencv_${m} REQUIRED)
  list(APPEND OpenCV_LIBS ${OpenCV_${m}_LIBRARY})
endforeach()

# CUDA: optional, auto-detected. The CPU backend always builds (it is the reference).
if(DITRUN_CUDA STREQUAL "AUTO")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(DITRUN_CUDA ON)
  else()
    set(DITRUN_CUDA OFF)
  endif()
endif()
if(DITRUN_CUDA)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 90a 80-virtual)
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
endif()
message(STATUS "ditrun: CUDA backend ${DITRUN_CUDA}")

# ditrun_library(<target> <glob>...): a static library of the globbed sources. A folder whose code has
# not landed yet still yields a (empty) library so the targets that link it configure.
function(ditrun_library target)
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${ARGN})
  if(NOT srcs)
    set(stub ${CMAKE_CURRENT_BINARY_DIR}/${target}_empty.cpp)
    file(WRITE ${stub} "// no sources yet\n")
    set(srcs ${stub})
  endif()
  add_library(${target} STATIC ${srcs})
  target_include_directories(${target} PUBLIC ${CMAKE_SOURCE_DIR})
endfunction()
