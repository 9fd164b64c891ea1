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

# OpenCV (evaluate/): optional, auto-detected; only core, imgproc and imgcodecs. Debian ships
# OpenCVConfig.cmake in libopencv-dev, which drags in ~150 packages (GUI, video, dnn), so the three modules
# are located directly instead. Without OpenCV, `ditrun evaluate` only reports that it is missing.
set(DITRUN_OPENCV AUTO CACHE STRING "Build the image evaluator (ditrun evaluate) with OpenCV: ON, OFF, or AUTO")
set_property(CACHE DITRUN_OPENCV PROPERTY STRINGS AUTO ON OFF)
if(DITRUN_OPENCV)  # ON or AUTO
  set(opencv_required)
  if(NOT DITRUN_OPENCV STREQUAL "AUTO")
    set(opencv_required REQUIRED)
  endif()
  find_path(OpenCV_INCLUDE_DIRS opencv2/core.hpp PATH_SUFFIXES opencv4 ${opencv_required})
  set(OpenCV_LIBS)
  set(opencv_found ${OpenCV_INCLUDE_DIRS})
  foreach(m core imgproc imgcodecs)
    find_library(OpenCV_${m}_LIBRARY opencv_${m} ${opencv_required})
    list(APPEND OpenCV_LIBS ${OpenCV_${m}_LIBRARY})
    if(NOT OpenCV_${m}_LIBRARY)
      set(opencv_found OFF)
    endif()
  endforeach()
  if(opencv_found)
    set(DITRUN_OPENCV ON)
  else()
    set(DITRUN_OPENCV OFF)
    message(STATUS "ditrun: OpenCV not found (libopencv-core-dev, -imgproc-dev, -imgcodecs-dev): building without "
                   "the evaluator")
  endif()
endif()
message(STATUS "ditrun: OpenCV evaluator ${DITRUN_OPENCV}")
if(DITRUN_OPENCV)
  add_compile_definitions(DITRUN_WITH_OPENCV=1)
else()
  add_compile_definitions(DITRUN_WITH_OPENCV=0)
endif()

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
  # sm_90a machine code for Hopper (wgmma), plus PTX for sm_80 that the driver compiles for other GPUs.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 90a 80-virtual)
  endif()
  enable_language(CUDA)
  # CUDA sources inherit CXX_STANDARD 20; CMake 3.25 does not know nvcc 13's flag for it, so it is named here.
  set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
  find_package(CUDAToolkit REQUIRED)
  # cuDNN (the library and its C headers) comes with NVIDIA's CUDA packages; the C++ frontend headers
  # come from NVIDIA's PyPI package nvidia-cudnn-frontend (scripts/fetch_cudnn_frontend.sh).
  find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS} PATH_SUFFIXES x86_64-linux-gnu REQUIRED)
  find_library(CUDNN_LIBRARY cudnn HINTS ${CUDAToolkit_LIBRARY_DIR} REQUIRED)
  find_path(CUDNN_FRONTEND_INCLUDE_DIR cudnn_frontend.h
            HINTS ${CMAKE_SOURCE_DIR}/third_party/cudnn-frontend/include $ENV{CUDNN_FRONTEND_INCLUDE_DIR})
  if(NOT CUDNN_FRONTEND_INCLUDE_DIR)
    message(FATAL_ERROR "cudnn_frontend.h not found: run scripts/fetch_cudnn_frontend.sh (it unpacks the headers of "
                        "NVIDIA's nvidia-cudnn-frontend wheel into third_party/), or configure with -DDITRUN_CUDA=OFF")
  endif()
  message(STATUS "ditrun: cuDNN ${CUDNN_LIBRARY}, frontend headers ${CUDNN_FRONTEND_INCLUDE_DIR}")
  # CuTe (header-only, from NVIDIA's PyPI package nvidia-cutlass, scripts/fetch_cutlass.sh): the wgmma atoms
  # and swizzled layouts of the Hopper block-sparse kernel. Only that kernel's target sees these headers.
  find_path(CUTLASS_INCLUDE_DIR cute/tensor.hpp
            HINTS ${CMAKE_SOURCE_DIR}/third_party/cutlass/include $ENV{CUTLASS_INCLUDE_DIR})
  if(NOT CUTLASS_INCLUDE_DIR)
    message(FATAL_ERROR "cute/tensor.hpp not found: run scripts/fetch_cutlass.sh (it unpacks the CuTe/CUTLASS "
                        "headers of NVIDIA's nvidia-cutlass wheel into third_party/), set CUTLASS_INCLUDE_DIR to a "
                        "CUTLASS include/ folder, or configure with -DDITRUN_CUDA=OFF")
  endif()
  # The Hopper kernel's body exists only in sm_90a code; without it the host side refuses the kernel.
  set(DITRUN_SM90A_BUILT 0)
  foreach(arch ${CMAKE_CUDA_ARCHITECTURES})
    if(arch MATCHES "^90a")
      set(DITRUN_SM90A_BUILT 1)
    endif()
  endforeach()
  message(STATUS "ditrun: CuTe headers ${CUTLASS_INCLUDE_DIR}, sm_90a code ${DITRUN_SM90A_BUILT}")
endif()
message(STATUS "ditrun: CUDA backend ${DITRUN_CUDA}")
if(DITRUN_CUDA)
  set(DITRUN_WITH_CUDA 1)
else()
  set(DITRUN_WITH_CUDA 0)
endif()
add_compile_definitions(DITRUN_WITH_CUDA=${DITRUN_WITH_CUDA})

# ditrun_sources(<out-var> <folder>...): the C++ sources under the folders, plus, in CUDA builds, the .cu
# files; anything under a cuda/ folder is CUDA-only and left out of CPU builds.
function(ditrun_sources out)
  set(all)
  foreach(dir ${ARGN})
    file(GLOB_RECURSE found CONFIGURE_DEPENDS ${dir}/*.cpp)
    if(DITRUN_CUDA)
      file(GLOB_RECURSE cu CONFIGURE_DEPENDS ${dir}/*.cu)
      list(APPEND found ${cu})
    else()
      list(FILTER found EXCLUDE REGEX "/cuda/")
    endif()
    list(APPEND all ${found})
  endforeach()
  set(${out} ${all} PARENT_SCOPE)
endfunction()

# ditrun_link_cuda(<target>): the CUDA libraries a target with device code needs.
function(ditrun_link_cuda target)
  if(DITRUN_CUDA)
    target_include_directories(${target} PUBLIC ${CUDAToolkit_INCLUDE_DIRS} ${CUDNN_INCLUDE_DIR})
    target_include_directories(${target} PRIVATE ${CUDNN_FRONTEND_INCLUDE_DIR})
    # The cuDNN frontend compiles some engines at run time (NVRTC) and loads them through the driver API.
    target_link_libraries(${target} PUBLIC CUDA::cudart CUDA::cublasLt CUDA::cublas ${CUDNN_LIBRARY} CUDA::nvrtc CUDA::cuda_driver)
    set_target_properties(${target} PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -Xcompiler=-Wall>)
  endif()
endfunction()

# ditrun_library(<target> <glob>...): a static library of the globbed sources. A folder whose code has
# not landed yet still yields a (empty) library so the targets that link it configure.
function(ditrun_library target)
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${ARGN})
  list(FILTER srcs EXCLUDE REGEX "/cuda/")
  if(NOT srcs)
    set(stub ${CMAKE_CURRENT_BINARY_DIR}/${target}_empty.cpp)
    file(WRITE ${stub} "// no sources yet\n")
    set(srcs ${stub})
  endif()
  add_library(${target} STATIC ${srcs})
  target_include_directories(${target} PUBLIC ${CMAKE_SOURCE_DIR})
endfunction()
