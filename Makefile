# minidl: make | make tests | make asan | make bench | make profile | make test-interop | make install PREFIX=/usr/local
# One binary runs on any x86-64: no -march=native. SIMD kernels live in per-ISA files
# under src/kernels/ (*_sse2.c, *_avx2.c, *_avx512.c: the suffix picks the -m flags) and
# are chosen at run time (src/kernels/dispatch.c).

CC      ?= gcc
PREFIX  ?= /usr/local
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
WARN    := -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
DEFS    := -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L
ALL_CFLAGS = $(WARN) $(DEFS) -Iinclude -Isrc $(CFLAGS) $(EXTRA_CFLAGS)
LDLIBS  := -lm -pthread

ISA_sse2   :=
ISA_avx2   := -mavx2 -mfma
ISA_avx512 := -mavx512f -mavx512dq -mavx512bw -mavx512vl -mavx2 -mfma
isa_flags = $(foreach i,sse2 avx2 avx512,$(if $(filter %_$(i),$(basename $(notdir $1))),$(ISA_$(i))))

B        ?= build
# Object names must stay unique across folders: ar keeps only a member's base name.
LIB_SRC  := $(filter-out src/main_train.c src/main_infer.c src/main_export.c,$(wildcard src/*.c src/layers/*.c src/kernels/*.c src/kernels/*/*.c))
SRC_H    := $(wildcard include/*.h src/*.h src/layers/*.h src/kernels/*.h src/kernels/*/*.h)
ifneq ($(words $(notdir $(LIB_SRC))),$(words $(sort $(notdir $(LIB_SRC)))))
$(error two library sources share a base name; libminidl.a would keep only one)
endif
LIB_OBJ  := $(LIB_SRC:src/%.c=$(B)/src/%.o)
# The fuzz targets' bodies (tests/fuzz/targets.c) are in the test binary too: make tests
# replays the committed corpora and regressions through them (tests/test_fuzz.c).
TEST_SRC := $(wildcard tests/*.c) tests/fuzz/targets.c
TEST_OBJ := $(TEST_SRC:tests/%.c=$(B)/tests/%.o)
BENCH_SRC:= $(wildcard bench/*.c)
BENCH_OBJ:= $(BENCH_SRC:bench/%.c=$(B)/bench/%.o)

.PHONY: tsan all train infer dlexport tests asan bench install clean csv2bin test-interop mpi test-mpi bench-mpi \
        fuzz fuzz-targets fuzz-run profile test-profile
all: $(B)/train $(B)/infer $(B)/dlexport $(B)/run_tests $(B)/csv2bin
	@ln -sf $(B)/train train; ln -sf $(B)/infer infer; ln -sf $(B)/dlexport dlexport

train: $(B)/train
	@ln -sf $(B)/train train
infer: $(B)/infer
	@ln -sf $(B)/infer infer
dlexport: $(B)/dlexport
	@ln -sf $(B)/dlexport dlexport

$(B)/src/%.o: src/%.c $(SRC_H)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(call isa_flags,$<) -c $< -o $@
$(B)/tests/%.o: tests/%.c $(SRC_H) $(wildcard tests/*.h tests/fuzz/*.h) | $(B)/tests
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests -c $< -o $@
$(B)/bench/%.o: bench/%.c $(SRC_H) $(wildcard bench/*.h) | $(B)/bench
	$(CC) $(ALL_CFLAGS) $(call isa_flags,$<) -c $< -o $@
$(B)/tests $(B)/bench:
	@mkdir -p $@

$(B)/libminidl.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(B)/train: $(B)/src/main_train.o $(B)/libminidl.a
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -o $@ $^ $(LDLIBS)
$(B)/infer: $(B)/src/main_infer.o $(B)/libminidl.a
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -o $@ $^ $(LDLIBS)
$(B)/dlexport: $(B)/src/main_export.o $(B)/libminidl.a
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -o $@ $^ $(LDLIBS)
$(B)/run_tests: $(TEST_OBJ) $(B)/libminidl.a
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -o $@ $^ $(LDLIBS)
$(B)/bench_minidl: $(BENCH_OBJ) $(B)/libminidl.a
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -o $@ $^ $(LDLIBS) -ldl

# Tools under scripts/: csv2bin links the library; idx2csv stands alone.
csv2bin: $(B)/csv2bin
$(B)/scripts/%.o: scripts/%.c $(wildcard include/*.h) | $(B)/scripts
	$(CC) $(ALL_CFLAGS) -c $< -o $@
$(B)/scripts:
	@mkdir -p $@
$(B)/csv2bin: $(B)/scripts/csv2bin.o $(B)/libminidl.a
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -o $@ $^ $(LDLIBS)
$(B)/idx2csv: $(B)/scripts/idx2csv.o
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -o $@ $^

# The end-to-end tests find train, infer, csv2bin and dlexport through MINIDL_BIN.
tests: $(B)/run_tests $(B)/train $(B)/infer $(B)/csv2bin $(B)/dlexport
	MINIDL_BIN=$(B) ./$(B)/run_tests $(T)

# train-mpi: train's main compiled again with -DMINIDL_MPI and the MPI module
# (src/mpi/), linked by mpicc (Open MPI: Debian openmpi-bin, libopenmpi-dev). Nothing
# else needs MPI. make test-mpi runs tests/mpi/run.sh; make bench-mpi bench/mpi.sh.
MPICC   ?= mpicc
mpi: $(B)/train-mpi
	@ln -sf $(B)/train-mpi train-mpi
$(B)/mpi/%.o: src/%.c $(SRC_H)
	@mkdir -p $(@D)
	$(MPICC) $(ALL_CFLAGS) -DMINIDL_MPI -c $< -o $@
$(B)/train-mpi: $(B)/mpi/main_train.o $(B)/mpi/mpi/comm_mpi.o $(B)/libminidl.a
	$(MPICC) $(CFLAGS) $(EXTRA_CFLAGS) -o $@ $^ $(LDLIBS)
$(B)/mpi_modelcmp: $(B)/tests/mpi/modelcmp.o $(B)/libminidl.a
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -o $@ $^ $(LDLIBS)
$(B)/tests/mpi/%.o: tests/mpi/%.c $(SRC_H)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@
test-mpi: $(B)/train-mpi $(B)/train $(B)/mpi_modelcmp
	MINIDL_BIN=$(B) tests/mpi/run.sh
bench-mpi: $(B)/train-mpi $(B)/train
	MINIDL_BIN=$(B) bench/mpi.sh $(BENCH_ARGS)

# ONNX's checker and ONNX Runtime on every exported example (scripts/test_interop.sh);
# skips, saying why, where python3-onnx or onnxruntime-node is missing.
ORT_DIR ?= $(B)/interop
test-interop: $(B)/train $(B)/infer $(B)/dlexport
	MINIDL_BIN=$(B) ORT_DIR=$(ORT_DIR) scripts/test_interop.sh

# ThreadSanitizer over the same suite (the pool, every parallel op). setarch -R turns off
# address randomisation, which newer kernels set too high for TSan's memory layout.
tsan:
	setarch -R $(MAKE) B=build-tsan OPT=-O1 EXTRA_CFLAGS="-fsanitize=thread -fno-omit-frame-pointer" tests

asan:
	$(MAKE) B=build-asan OPT=-O1 EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" tests

# Fuzzing (tests/fuzz/README.md): clang's libFuzzer with ASan and UBSan, the library
# built again with the same flags in build-fuzz/, so make and make tests need no clang.
FUZZ_CC      ?= clang
FUZZ_B       := build-fuzz
FUZZ_TARGETS := config csv_data csv_labels bin_dataset model checkpoint
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_SECONDS ?= 60
# A finding: a crash, a sanitizer report, an exit, a leak, over 1 s on one input of at
# most 64 KB, or over 512 MB.
FUZZ_OPTS    ?= -rss_limit_mb=512 -timeout=1 -max_len=65536
fuzz:
	$(MAKE) B=$(FUZZ_B) CC=$(FUZZ_CC) OPT=-O1 EXTRA_CFLAGS="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" fuzz-targets
fuzz-targets: $(FUZZ_TARGETS:%=$(B)/fuzz/fuzz_%)
# No input reader runs a SIMD kernel, and instrumenting them triples the build: they
# are compiled plainly (ASan-built code calls plain code safely).
$(FUZZ_B)/src/kernels/%.o: override EXTRA_CFLAGS =
$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_main.c tests/fuzz/targets.c tests/fuzz/targets.h $(B)/libminidl.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/fuzz -DFUZZ_TARGET=fuzz_$* -fsanitize=fuzzer -o $@ tests/fuzz/fuzz_main.c \
		tests/fuzz/targets.c $(B)/libminidl.a $(LDLIBS)
# Each target for FUZZ_SECONDS from its committed corpus; a finding fails, its input
# left in tests/fuzz/findings/.
fuzz-run: fuzz
	FUZZ_OPTS="$(FUZZ_OPTS)" tests/fuzz/run.sh $(FUZZ_B)/fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

bench: $(B)/bench_minidl $(B)/train
	./$(B)/bench_minidl $(BENCH_ARGS)

# The step profiler (bench/profile/profile_step.c): the library built again with
# MINIDL_PROFILE in build-prof/, where the pool records its jobs (threads.h), and the
# tool linked without PIE, so that addr2line names the functions it prints.
profile:
	$(MAKE) B=build-prof EXTRA_CFLAGS=-DMINIDL_PROFILE build-prof/profile_step
# The recorder's own test (tests/test_threads.c, in the profile build only), and the
# tool over the bundled digits data.
test-profile:
	$(MAKE) B=build-prof EXTRA_CFLAGS=-DMINIDL_PROFILE build-prof/run_tests build-prof/profile_step
	./build-prof/run_tests par_
	./build-prof/profile_step --threads 2 --steps 20 configs/digits_mlp.ini data/digits_train_x.csv \
		data/digits_train_y.csv > /dev/null
$(B)/profile/%.o: bench/profile/%.c $(SRC_H)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@
$(B)/profile_step: $(B)/profile/profile_step.o $(B)/libminidl.a
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -no-pie -o $@ $^ $(LDLIBS)

install: $(B)/train $(B)/infer $(B)/dlexport $(B)/csv2bin
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(B)/train $(DESTDIR)$(PREFIX)/bin/minidl-train
	install -m 755 $(B)/infer $(DESTDIR)$(PREFIX)/bin/minidl-infer
	install -m 755 $(B)/dlexport $(DESTDIR)$(PREFIX)/bin/minidl-export
	install -m 755 $(B)/csv2bin $(DESTDIR)$(PREFIX)/bin/minidl-csv2bin
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 $(wildcard man/*.1) $(DESTDIR)$(PREFIX)/share/man/man1/

clean:
	rm -rf build build-asan build-tsan build-fuzz build-prof train infer dlexport train-mpi
