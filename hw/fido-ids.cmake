# hw/fido-ids.cmake: the FIDO USB id table, generated from hw/data/fido-usb-ids.tsv by
# scripts/gen-fido-ids at build time (STYLE.md: generated data comes from a checked script).
# The same run writes the udev rules into the build directory; udev/CMakeLists.txt installs them
# and tests/hw/udev.cmake checks them against the committed copy udev/70-keydesk-fido.rules.
find_program(KD_GEN_PYTHON NAMES python3 REQUIRED)
set(KD_FIDO_IDS_TSV ${PROJECT_SOURCE_DIR}/hw/data/fido-usb-ids.tsv)
set(KD_FIDO_IDS_SCRIPT ${PROJECT_SOURCE_DIR}/scripts/gen-fido-ids)
set(KD_FIDO_IDS_TABLE ${CMAKE_CURRENT_BINARY_DIR}/kd-fido-ids-table.inc)
set(KD_FIDO_IDS_RULES ${CMAKE_CURRENT_BINARY_DIR}/70-keydesk-fido.rules)
add_custom_command(
  OUTPUT ${KD_FIDO_IDS_TABLE} ${KD_FIDO_IDS_RULES}
  COMMAND ${KD_GEN_PYTHON} ${KD_FIDO_IDS_SCRIPT} --table ${KD_FIDO_IDS_TABLE}
          --rules ${KD_FIDO_IDS_RULES} ${KD_FIDO_IDS_TSV}
  DEPENDS ${KD_FIDO_IDS_TSV} ${KD_FIDO_IDS_SCRIPT}
  COMMENT "Checking the FIDO USB id list and generating its C table and udev rules"
  VERBATIM)
target_sources(kd_hw PRIVATE kd-fido-ids.c ${KD_FIDO_IDS_TABLE})
