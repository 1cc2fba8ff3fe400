# SPDX-License-Identifier: AGPL-3.0-or-later
# Build one manual page: SRC (scdoc, with @VERSION@ and an optional @INCLUDE@ line), the
# output of CMD (","-separated) put in place of @INCLUDE@ (scdoc text when the program
# prints scdoc, else a literal block), then scdoc into OUT.
file(READ ${SRC} text)
string(REPLACE "@VERSION@" "${VERSION}" text "${text}")
if(NOT CMD STREQUAL "")
  string(REPLACE "," ";" cmd "${CMD}")
  execute_process(COMMAND ${cmd} OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${cmd}: exit status ${rc}")
  endif()
  if(NOT cmd MATCHES "--config-reference=scdoc")
    # --help output: keep from the first line that lists commands or options, verbatim.
    string(REGEX REPLACE "^Usage:[^\n]*\n" "" out "${out}")
    string(REGEX REPLACE "\t" "    " out "${out}")
    set(out "```\n${out}```\n")
  endif()
  string(REPLACE "@INCLUDE@\n" "${out}" text "${text}")
endif()
get_filename_component(dir ${OUT} DIRECTORY)
file(MAKE_DIRECTORY ${dir})
file(WRITE ${OUT}.scd "${text}")
execute_process(COMMAND ${SCDOC} INPUT_FILE ${OUT}.scd OUTPUT_FILE ${OUT} RESULT_VARIABLE rc
                ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "scdoc ${OUT}.scd: ${err}")
endif()
