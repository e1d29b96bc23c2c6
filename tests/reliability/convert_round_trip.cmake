# convert through every format and back: llm.c → lightgpt checkpoint → safetensors (with
# transformers' config.json beside it) → llm.c must reproduce the input byte for byte, and
# safetensors → checkpoint must load again.
#   cmake -DCONVERT=<convert> -DINPUT=<llm.c file> -DWORK=<directory> -P convert_round_trip.cmake
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/hf)
function(run)
  execute_process(COMMAND ${CONVERT} ${ARGN} RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "convert ${ARGN} failed (${rc}):\n${err}")
  endif()
endfunction()
run(--to-lightgpt ${INPUT} ${WORK}/a.ckpt)
run(--to-safetensors ${WORK}/a.ckpt ${WORK}/hf/model.safetensors)
run(--to-llmc --from safetensors ${WORK}/hf/model.safetensors ${WORK}/b.bin)
run(--to-lightgpt --from safetensors ${WORK}/hf/model.safetensors ${WORK}/c.ckpt)
if(NOT EXISTS ${WORK}/hf/config.json)
  message(FATAL_ERROR "convert --to-safetensors wrote no config.json")
endif()
file(READ ${WORK}/hf/config.json hf_config)
if(NOT hf_config MATCHES "\"model_type\": \"gpt2\"")
  message(FATAL_ERROR "config.json is not a GPT-2 config:\n${hf_config}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${INPUT} ${WORK}/b.bin
                RESULT_VARIABLE differ)
if(differ)
  message(FATAL_ERROR "llm.c → lightgpt → safetensors → llm.c changed the file")
endif()
message("convert: round trip through every format reproduced ${INPUT}")
