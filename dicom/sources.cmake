# The DCMTK adapter's sources (included by the top-level CMakeLists.txt).
set(DCMC_DICOM_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/adapter.cc
  ${CMAKE_CURRENT_LIST_DIR}/prescan.cc)
