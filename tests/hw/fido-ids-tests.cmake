# tests/hw/fido-ids-tests.cmake: the FIDO USB id table (hw/kd-fido-ids.c + the table
# scripts/gen-fido-ids generates), checked against hw/data/fido-usb-ids.tsv read independently.
# Included from tests/CMakeLists.txt, so paths are relative to this file's directory.
kd_cmocka(test-fido-ids SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-fido-ids.c LIBS kd_hw LABELS hw)
target_compile_definitions(test-fido-ids PRIVATE
  KD_FIDO_IDS_TSV="${PROJECT_SOURCE_DIR}/hw/data/fido-usb-ids.tsv")
