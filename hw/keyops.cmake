# hw/keyops.cmake: key operations (libfido2 in worker threads), the AAGUID catalogue and the
# FIDO2 policy pre-flight. Included by hw/CMakeLists.txt (CMAKE_CURRENT_* are hw/'s).

# The AAGUID table is generated from the committed data file hw/data/aaguids.tsv (itself derived
# from ../shared/reference/keys/aaguids.json by the same script; tests/hw/keyops.cmake checks
# that it is up to date). Only Python's standard library is needed.
find_program(KD_HW_PYTHON3 NAMES python3 REQUIRED)
set(KD_AAGUID_TSV ${CMAKE_CURRENT_SOURCE_DIR}/data/aaguids.tsv)
set(KD_AAGUID_TABLE ${CMAKE_CURRENT_BINARY_DIR}/kd-aaguid-table.c)
add_custom_command(OUTPUT ${KD_AAGUID_TABLE}
  COMMAND ${KD_HW_PYTHON3} ${PROJECT_SOURCE_DIR}/scripts/gen-aaguid-catalogue c
          ${KD_AAGUID_TSV} ${KD_AAGUID_TABLE}
  DEPENDS ${KD_AAGUID_TSV} ${PROJECT_SOURCE_DIR}/scripts/gen-aaguid-catalogue
  COMMENT "Generating the AAGUID catalogue from hw/data/aaguids.tsv")
set_source_files_properties(${KD_AAGUID_TABLE} PROPERTIES HEADER_FILE_ONLY ON GENERATED ON)

target_sources(kd_hw PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/kd-key-error.c
  ${CMAKE_CURRENT_SOURCE_DIR}/kd-pin-rules.c
  ${CMAKE_CURRENT_SOURCE_DIR}/kd-aaguid-catalogue.c
  ${CMAKE_CURRENT_SOURCE_DIR}/kd-key-policy.c
  ${CMAKE_CURRENT_SOURCE_DIR}/kd-key-credential.c
  ${CMAKE_CURRENT_SOURCE_DIR}/kd-key.c
  ${KD_AAGUID_TABLE})
