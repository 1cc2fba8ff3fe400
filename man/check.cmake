# SPDX-License-Identifier: AGPL-3.0-or-later
# A manual page must format without a single groff warning (and man must accept it).
execute_process(COMMAND groff -ww -z -t -man -Kutf8 ${PAGE} ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR NOT err STREQUAL "")
  message(FATAL_ERROR "${PAGE}: groff -ww:\n${err}")
endif()
execute_process(COMMAND man --warnings -E UTF-8 -l ${PAGE} OUTPUT_VARIABLE text
                ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR NOT err STREQUAL "")
  message(FATAL_ERROR "${PAGE}: man --warnings:\n${err}")
endif()
if(NOT text MATCHES "NAME")
  message(FATAL_ERROR "${PAGE}: no NAME section")
endif()
message(STATUS "${PAGE}: no warnings")
