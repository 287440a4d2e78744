# The DCMTK adapter's sources (included by the top-level CMakeLists.txt).
set(DCMC_DICOM_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/api.cc
  ${CMAKE_CURRENT_LIST_DIR}/errors.cc
  ${CMAKE_CURRENT_LIST_DIR}/load.cc
  ${CMAKE_CURRENT_LIST_DIR}/pixels.cc
  ${CMAKE_CURRENT_LIST_DIR}/j2k.cc
  ${CMAKE_CURRENT_LIST_DIR}/block.cc
  ${CMAKE_CURRENT_LIST_DIR}/protect.cc
  ${CMAKE_CURRENT_LIST_DIR}/save.cc
  ${CMAKE_CURRENT_LIST_DIR}/encrypt.cc
  ${CMAKE_CURRENT_LIST_DIR}/decrypt.cc
  ${CMAKE_CURRENT_LIST_DIR}/dicomdir.cc
  ${CMAKE_CURRENT_LIST_DIR}/prescan.cc
  ${CMAKE_CURRENT_LIST_DIR}/prescan_element.cc
  ${CMAKE_CURRENT_LIST_DIR}/prescan_stream.cc
  ${CMAKE_CURRENT_LIST_DIR}/prescan_syntax.cc)
