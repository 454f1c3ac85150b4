# Engine unit tests: conf.d parsing, the loader's ABI checks, the chain
# runner.  Fixture plugins go to a directory of their own.
set(FX_DIR ${CMAKE_BINARY_DIR}/fixtures.d)
file(MAKE_DIRECTORY ${FX_DIR})
function(sluice_fixture name)
  add_library(${name} MODULE ${CMAKE_SOURCE_DIR}/tests/unit/fixtures/fx_stage.c)
  set_target_properties(${name} PROPERTIES PREFIX "" OUTPUT_NAME ${name}
    LIBRARY_OUTPUT_DIRECTORY ${FX_DIR} C_VISIBILITY_PRESET hidden)
  target_compile_definitions(${name} PRIVATE ${ARGN})
endfunction()
sluice_fixture(fx)
sluice_fixture(fx_final FX_FINAL)
sluice_fixture(fx_major2 FX_MAJOR=2)
sluice_fixture(fx_minor_new FX_MINOR=SLUICE_ABI_MINOR+1)
sluice_fixture(fx_nosym FX_EXPORT_NONE)
sluice_fixture(fx_v2sym FX_SYMBOL_V2)
sluice_fixture(fx_old FX_MINOR=1)  # an ingress built for ABI 1.1
set(FX_TARGETS fx fx_final fx_major2 fx_minor_new fx_nosym fx_v2sym fx_old)

foreach(t conf loader chain)
  add_executable(test_${t} ${CMAKE_SOURCE_DIR}/tests/unit/test_${t}.c)
  target_link_libraries(test_${t} PRIVATE sluice_engine ${CMOCKA_LIB})
  target_compile_definitions(test_${t} PRIVATE FX_DIR="${FX_DIR}")
  add_dependencies(test_${t} ${FX_TARGETS})
  add_test(NAME engine_${t} COMMAND test_${t})
endforeach()

# conf_move.c: stage moves in conf.d and their undo (issue #6)
add_executable(test_conf_move ${CMAKE_SOURCE_DIR}/tests/unit/test_conf_move.c)
target_link_libraries(test_conf_move PRIVATE sluice_engine ${CMOCKA_LIB})
add_test(NAME engine_conf_move COMMAND test_conf_move)

# the engine's `database` (host->database(), ABI 1.2, sluiced -D) and the
# DSN a PostgreSQL stage picks (pgpool_stage_dsn)
add_executable(test_engine_database
  ${CMAKE_SOURCE_DIR}/tests/unit/test_engine_database.c)
target_link_libraries(test_engine_database PRIVATE sluice_engine sluice_pgpool
  ${CMOCKA_LIB})
target_compile_definitions(test_engine_database PRIVATE FX_DIR="${FX_DIR}")
add_dependencies(test_engine_database ${FX_TARGETS})
add_test(NAME engine_database COMMAND test_engine_database)

# envelope.c: recipients changed by stages, the ingress's outcomes, and
# messages sent by stages (ABI 1.2, issue #6: redirect and notify)
add_executable(test_envelope ${CMAKE_SOURCE_DIR}/tests/unit/test_envelope.c)
target_link_libraries(test_envelope PRIVATE sluice_engine ${CMOCKA_LIB})
target_compile_definitions(test_envelope PRIVATE FX_DIR="${FX_DIR}")
add_dependencies(test_envelope ${FX_TARGETS})
add_test(NAME engine_envelope COMMAND test_envelope)
