# tests/testing.cmake: what every test directory uses: the helpers kd_test() and kd_cmocka(), the
# environment every test gets, the umockdev and valgrind wrappers. Included by the top-level
# CMakeLists.txt (with KD_TESTS) before tests/ and tests/softkey/ are added, so its variables
# are visible in both.
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
find_program(XVFB_RUN xvfb-run REQUIRED)
find_program(BASH bash REQUIRED)
find_program(CLANG_FORMAT clang-format)
# Debian's python3-* modules (dogtail, fido2, gi) import only under the system interpreter.
set(KD_PYTHON /usr/bin/python3)
set(KD_ARTIFACTS ${CMAKE_BINARY_DIR}/test-artifacts)
file(MAKE_DIRECTORY ${KD_ARTIFACTS})

# Environment every test gets; sanitizer builds need their runtime options too.
set(KD_TEST_ENV
  "G_DEBUG=fatal-criticals"
  "KEYDESK_LOCALEDIR=${KD_BUILD_LOCALEDIR}"
  "NO_AT_BRIDGE=0")
if(KD_SANITIZE)
  list(APPEND KD_TEST_ENV
    "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1"
    "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_LIST_DIR}/lsan.supp:print_suppressions=0"
    "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endif()

# kd_test(NAME LABELS "a;b" COMMAND ... [TIMEOUT s])
function(kd_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "LABELS;COMMAND;ENV" ${ARGN})
  add_test(NAME ${name} COMMAND ${T_COMMAND})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "${KD_TEST_ENV};${T_ENV}")
endfunction()

# umockdev's preload for tests of USB and hidraw (testinfra §1, §2b). Under ASan the sanitizer
# runtime must come first in the preload list (testinfra §6), so the wrapper differs by build.
pkg_check_modules(UMOCKDEV REQUIRED IMPORTED_TARGET umockdev-1.0)
find_program(UMOCKDEV_WRAPPER umockdev-wrapper REQUIRED)
if(KD_SANITIZE)
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
    OUTPUT_VARIABLE KD_LIBASAN OUTPUT_STRIP_TRAILING_WHITESPACE)
  set(KD_UMOCKDEV_WRAPPER env "LD_PRELOAD=${KD_LIBASAN}:libumockdev-preload.so.0")
else()
  set(KD_UMOCKDEV_WRAPPER ${UMOCKDEV_WRAPPER})
endif()

# With KD_VALGRIND (scripts/test turns it on for the plain build), every cmocka test that runs
# without a wrapper or under umockdev's also runs under valgrind memcheck as valgrind-NAME,
# labelled like NAME plus `valgrind`: invalid reads/writes, uninitialised values and definite
# leaks fail it. (`ctest -LE valgrind` leaves them out.) Tests under Xvfb do not get one (GTK
# under memcheck is mostly noise), nor does any sanitizer build.
if(KD_VALGRIND AND NOT KD_SANITIZE)
  find_program(VALGRIND valgrind REQUIRED)
  set(KD_VALGRIND_COMMAND ${VALGRIND} --quiet --error-exitcode=99 --leak-check=full
    --errors-for-leak-kinds=definite --show-leak-kinds=definite --track-origins=yes
    --suppressions=${CMAKE_CURRENT_LIST_DIR}/valgrind.supp)
endif()

# kd_cmocka(NAME SOURCE LIBS LABELS [WRAPPER cmd…] [TIMEOUT s]): a cmocka unit test binary.
function(kd_cmocka name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS;WRAPPER" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA kd_flags)
  kd_test(${name} LABELS ${T_LABELS} TIMEOUT ${T_TIMEOUT}
    COMMAND ${T_WRAPPER} $<TARGET_FILE:${name}>)
  if(KD_VALGRIND_COMMAND AND (NOT T_WRAPPER OR "${T_WRAPPER}" STREQUAL "${KD_UMOCKDEV_WRAPPER}"))
    math(EXPR vg_timeout "${T_TIMEOUT} * 4")
    kd_test(valgrind-${name} LABELS "${T_LABELS};valgrind" TIMEOUT ${vg_timeout}
      COMMAND ${T_WRAPPER} ${KD_VALGRIND_COMMAND} $<TARGET_FILE:${name}>
      ENV "G_SLICE=always-malloc" "G_DEBUG=gc-friendly" "KD_TEST_SLOW=1")
  endif()
endfunction()

