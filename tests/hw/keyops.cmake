# tests/hw/keyops.cmake: key operations (hw/kd-key*.c, kd-pin-rules, the AAGUID catalogue, the
# policy pre-flight, core/kd-key-request). Included from tests/CMakeLists.txt, so paths are
# relative to this file (CMAKE_CURRENT_LIST_DIR), not to CMAKE_CURRENT_SOURCE_DIR.
set(KD_KEYS_REFERENCE ${PROJECT_SOURCE_DIR}/../shared/reference/keys)

kd_cmocka(hw-key-rules SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-key-rules.c LIBS kd_hw LABELS hw)
kd_cmocka(hw-key-catalogue SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-key-catalogue.c
  LIBS kd_hw LABELS hw)
target_compile_definitions(hw-key-catalogue PRIVATE
  KD_AAGUID_TSV="${PROJECT_SOURCE_DIR}/hw/data/aaguids.tsv")
kd_cmocka(hw-key-credential SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-key-credential.c
  LIBS kd_core kd_hw LABELS hw)

# The committed hw/data/aaguids.tsv is what the script makes of the reference data today
# (../shared may be absent on a user's machine: then only the build-time C generation runs).
if(EXISTS ${KD_KEYS_REFERENCE}/aaguids.json)
  kd_test(hw-key-catalogue-script LABELS hw
    COMMAND ${KD_PYTHON} ${PROJECT_SOURCE_DIR}/scripts/gen-aaguid-catalogue check
            ${KD_KEYS_REFERENCE}/aaguids.json ${KD_KEYS_REFERENCE}/SOURCES.md
            ${PROJECT_SOURCE_DIR}/hw/data/aaguids.tsv)
endif()

# Against the soft key (tests/softkey, target kd_softkey; added after tests/ by the top-level
# CMakeLists, which is fine for linking).
foreach(t ops reset models)
  kd_cmocka(hw-key-${t} SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-key-${t}.c
    LIBS kd_hw kd_softkey LABELS hw)
  target_include_directories(hw-key-${t} PRIVATE ${CMAKE_CURRENT_LIST_DIR}
    ${PROJECT_SOURCE_DIR}/tests/softkey)
  target_compile_definitions(hw-key-${t} PRIVATE
    KD_PYTHON="${KD_PYTHON}"
    KD_VERIFY_SCRIPT="${CMAKE_CURRENT_LIST_DIR}/verify-credential.py"
    KD_KEYS_REFERENCE="${KD_KEYS_REFERENCE}")
endforeach()

# The full stack: libfido2's enumeration and hidraw backend on the soft key as a umockdev hidraw
# node (tests/softkey/softkey-hidraw.h), under umockdev's preload (ASan first, testinfra §6).
kd_cmocka(hw-key-hidraw SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-key-hidraw.c
  LIBS kd_hw kd_softkey_hidraw LABELS hw WRAPPER ${KD_UMOCKDEV_WRAPPER})
target_include_directories(hw-key-hidraw PRIVATE ${CMAKE_CURRENT_LIST_DIR}
  ${PROJECT_SOURCE_DIR}/tests/softkey)
target_compile_definitions(hw-key-hidraw PRIVATE
  KD_PYTHON="${KD_PYTHON}"
  KD_VERIFY_SCRIPT="${CMAKE_CURRENT_LIST_DIR}/verify-credential.py")

# End to end with Graph: the soft key's credential registered in the emulator (which checks the
# attestation with python3-fido2 as Entra does), and the pre-flight on the policy read from Graph.
kd_cmocka(hw-key-entra SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-key-entra.c
  LIBS kd_core kd_softkey kd_test_emulator LABELS "hw;graph" TIMEOUT 120)
target_include_directories(hw-key-entra PRIVATE ${CMAKE_CURRENT_LIST_DIR}
  ${PROJECT_SOURCE_DIR}/tests/softkey)
target_compile_definitions(hw-key-entra PRIVATE KD_PYTHON="${KD_PYTHON}"
  KD_VERIFY_SCRIPT="${CMAKE_CURRENT_LIST_DIR}/verify-credential.py")
