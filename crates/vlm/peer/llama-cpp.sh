#!/usr/bin/env bash
# llama.cpp as a peer in the CPU benchmark (issue 14): build llama.cpp from the source that
# PyPI's llama-cpp-python sdist vendors, write the bench's random Qwen3-VL-2B checkpoint in HF
# layout, convert it to GGUF (text Q4_K_M, mmproj Q8_0), run both engines on the same picture
# and prompt, print the ratio table, and compare teacher-forced agreement with the f32 path.
#
#   crates/vlm/peer/llama-cpp.sh [setup|build|ours|checkpoint|convert|bench|agree|all]...
#
#   setup       venv (cmake, ninja, transformers 4.57, torch), llama.cpp source from the sdist
#   build       llama-mtmd-cli, llama-quantize, llama-perplexity (Release, GGML_NATIVE, nice -j2)
#   ours        cargo build --release -p opslens-vlm --example llama_peer
#   checkpoint  random checkpoint in HF layout (peer/llama_peer.py) + the 1152x640 dashboard
#   convert     convert_hf_to_gguf.py: text f16 + mmproj Q8_0; llama-quantize text Q4_K_M
#   bench       PAIRS x (llama-mtmd-cli, then our llama_peer bench), ratio table
#   agree       teacher forcing: llama-perplexity --kl-divergence (Q4_K_M vs f16) and our
#               llama_peer teacher (Q4K vs f32), same text
#
# DATA (default target/llama-peer) holds the venv (~7 GB: PyPI's torch wheel brings its CUDA
# libraries; the converter imports torch), the llama.cpp build and, for SHAPE=2b, the
# checkpoints: bf16 safetensors 4.3 GB, f16 GGUF ~3.4 GB, mmproj Q8_0 ~0.4 GB, Q4_K_M ~1.1 GB.
# Env: SHAPE (2b | small), PAIRS (1), DECODE (32), THREADS (2), CTX (512), CHUNKS (2), JOBS (2),
# NO_AMX (0; 1 builds ggml without AMX kernels, see build()), ISA (native | avx2: both engines
# held to AVX2/FMA/F16C on a newer CPU, to stand in for an AVX2-only machine: llama.cpp built
# without GGML_NATIVE into llama-build-avx2, ours with MISTRALRS_FORCE_AVX2=1; logs in out-avx2).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
PEER="$ROOT/crates/vlm/peer"
DATA=${DATA:-$ROOT/target/llama-peer}
LLAMA_PY_VERSION=${LLAMA_PY_VERSION:-0.3.36}   # llama-cpp-python sdist that vendors llama.cpp
TRANSFORMERS_VERSION=${TRANSFORMERS_VERSION:-4.57.6}
TORCH_VERSION=${TORCH_VERSION:-2.9.1}
JOBS=${JOBS:-2}
PAIRS=${PAIRS:-1}
SHAPE=${SHAPE:-2b}     # 2b: Qwen3-VL-2B-Instruct's shapes (the figures); small: a fast smoke test
DECODE=${DECODE:-32}   # decoded tokens per run (both engines; EOS ignored)
THREADS=${THREADS:-2}
CTX=${CTX:-512}        # teacher forcing: chunk length; positions CTX/2..CTX-2 are scored
CHUNKS=${CHUNKS:-2}
PROMPT=${PROMPT:-"Read this monitoring dashboard. For each of the six panels give its title, the unit, the peak value and the time of every spike, then say which panel shows the first anomaly and why it matters for the incident."}
OURS="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/llama_peer"
VENV="$DATA/venv"
PY="$VENV/bin/python"
SRC="$DATA/llama_cpp_python-$LLAMA_PY_VERSION/vendor/llama.cpp"
ISA=${ISA:-native}
case "$ISA" in
    native) BUILD="$DATA/llama-build" OUTDIR="$DATA/out" ;;
    # candle's kernels and our VNNI/AMX choices follow this variable; our decode kernels are
    # AVX2 on every x86 CPU
    avx2) BUILD="$DATA/llama-build-avx2" OUTDIR="$DATA/out-avx2"; export MISTRALRS_FORCE_AVX2=1 ;;
    *) echo "ISA is native or avx2, not $ISA" >&2; exit 2 ;;
esac
BIN="$BUILD/bin"
HF="$DATA/hf-$SHAPE"   # the random checkpoint, HF layout
GG="$DATA/gguf-$SHAPE" # converted / quantized
PIC="$DATA/dashboard-1152x640.png"
mkdir -p "$DATA" "$OUTDIR"

log() { echo "== $*" >&2; }

setup() {
    [ -x "$PY" ] || python3 -m venv "$VENV"
    # wheels only for the tools; cmake from PyPI (Debian's may be missing or old)
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q cmake ninja numpy sentencepiece safetensors scikit-build-core \
        "transformers==$TRANSFORMERS_VERSION" "tokenizers" "protobuf" pillow
    # convert_hf_to_gguf.py imports torch. PyPI's Linux wheel is the CUDA build and will not
    # import without its nvidia-* libraries (checked: `--no-deps` fails with "libcublas.so.*
    # not found"), so it comes whole: ~3 GB more in the venv, CPU-only use.
    "$PY" -c "import torch" 2>/dev/null || "$VENV/bin/pip" install -q "torch==$TORCH_VERSION"
    if [ ! -d "$SRC" ]; then
        # --no-build-isolation: otherwise pip builds the sdist's build backend (cmake itself)
        # from source just to read its metadata.
        "$VENV/bin/pip" download -q --no-binary :all: --no-deps --no-build-isolation \
            "llama-cpp-python==$LLAMA_PY_VERSION" -d "$DATA/dl"
        tar xzf "$DATA/dl/llama_cpp_python-$LLAMA_PY_VERSION.tar.gz" -C "$DATA"
        rm -rf "$DATA/dl"
    fi
    "$VENV/bin/pip" install -q -e "$SRC/gguf-py"
}

build() {
    local cmake="$VENV/bin/cmake" flags=()
    # NO_AMX=1: compile ggml without its AMX kernels (they stay off the -march=native set). On
    # a 2-vCPU Sapphire Rapids VM this llama.cpp died with SIGILL on `tilezero` in an OpenMP
    # worker thread at the first matmul; its AVX-512 VNNI kernels run there.
    if [ "${NO_AMX:-0}" = 1 ]; then
        flags=(-DCMAKE_C_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
               -DCMAKE_CXX_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16")
    fi
    local native=ON
    # ISA=avx2: GGML_NATIVE off leaves AVX, AVX2, FMA, F16C and BMI2 on and AVX-512/AMX off
    [ "$ISA" = avx2 ] && native=OFF
    "$cmake" -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=$native "${flags[@]}" \
        -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
        -DCMAKE_MAKE_PROGRAM="$VENV/bin/ninja" >"$OUTDIR/cmake-configure.log"
    # the machine is shared: low priority, two jobs
    nice -n 10 "$cmake" --build "$BUILD" -j"$JOBS" \
        --target llama-mtmd-cli llama-quantize llama-perplexity
    ls -la "$BIN"/llama-mtmd-cli "$BIN"/llama-quantize "$BIN"/llama-perplexity
}

ours_build() {
    # the release example (a warm CARGO_BUILD_BUILD_DIR makes this quick)
    (cd "$ROOT" && cargo build --release -p opslens-vlm --example llama_peer)
}

checkpoint() {
    [ -f "$HF/model.safetensors" ] || "$PY" "$PEER/llama_peer.py" checkpoint "$HF" "$SHAPE"
    # the bench's synthetic dashboard at the size both engines are handed: 1152x640 is what
    # our CPU budget makes of the bench's 1280x720, and a multiple of 32, so neither engine
    # resizes it: 36x20 merged patches = 720 image tokens on both sides
    [ -f "$PIC" ] || "$OURS" picture --out "$PIC" --width 1152 --height 640
}

convert() {
    mkdir -p "$GG"
    local conv=("$PY" "$PEER/llama_peer.py" convert "$SRC" "$HF")
    [ -f "$GG/text-f16.gguf" ] || "${conv[@]}" --outtype f16 --outfile "$GG/text-f16.gguf" \
        >"$OUTDIR/convert-text-$SHAPE.log" 2>&1
    [ -f "$GG/mmproj-q8_0.gguf" ] || "${conv[@]}" --mmproj --outtype q8_0 \
        --outfile "$GG/mmproj-q8_0.gguf" >"$OUTDIR/convert-mmproj-$SHAPE.log" 2>&1
    [ -f "$GG/text-q4_k_m.gguf" ] || nice -n 10 "$BIN/llama-quantize" "$GG/text-f16.gguf" \
        "$GG/text-q4_k_m.gguf" Q4_K_M "$THREADS" >"$OUTDIR/quantize-$SHAPE.log" 2>&1
    ls -la "$GG"
}

bench() {
    local tables=()
    # Ours reads its quantized weights from the cache the app keeps (as llama.cpp reads its
    # quantized GGUF): made once here, untimed, so no timed run quantizes or maps the bf16
    # checkpoint (that alone would put ~4 GB of file pages into the peak RSS).
    local qc="$DATA/qcache-$SHAPE"
    mkdir -p "$qc"
    if [ -z "$(ls -A "$qc")" ]; then
        log "OpsLens: making the quantized-weight cache (untimed)"
        RAYON_NUM_THREADS=$THREADS "$OURS" bench --model "$HF" --image "$PIC" --prompt "$PROMPT" \
            --decode 1 --mode q4k --cache-dir "$qc" >/dev/null 2>"$OUTDIR/qcache-$SHAPE.log"
    fi
    for pair in $(seq 1 "$PAIRS"); do
        local lg="$OUTDIR/llama-$SHAPE-$pair.log" js="$OUTDIR/ours-$SHAPE-$pair.json"
        log "pair $pair: llama.cpp (load $(cut -d' ' -f1-3 /proc/loadavg))"
        { echo "load_avg_start: $(cat /proc/loadavg)"
          /usr/bin/time -v "$BIN/llama-mtmd-cli" -m "$GG/text-q4_k_m.gguf" \
            --mmproj "$GG/mmproj-q8_0.gguf" --image "$PIC" -p "$PROMPT" -n "$DECODE" \
            --ignore-eos --temp 0 -t "$THREADS" -c 4096 --no-warmup -lv 4 2>&1
          echo "load_avg_end: $(cat /proc/loadavg)"; } >"$lg" 2>&1
        log "pair $pair: OpsLens (load $(cut -d' ' -f1-3 /proc/loadavg))"
        RAYON_NUM_THREADS=$THREADS /usr/bin/time -v -o "$OUTDIR/ours-$SHAPE-$pair.time" \
            "$OURS" bench --model "$HF" --image "$PIC" --prompt "$PROMPT" --decode "$DECODE" \
            --mode q4k --cache-dir "$qc" >"$js" 2>"$OUTDIR/ours-$SHAPE-$pair.log"
        tables+=("$js" "$lg")
    done
    "$PY" "$PEER/llama_peer.py" table "${tables[@]}" | tee "$OUTDIR/table-$SHAPE.md"
}

agree() {
    local corpus="$DATA/corpus.txt"
    "$PY" "$PEER/llama_peer.py" corpus "$corpus"
    log "llama.cpp: f16 reference logits (load $(cut -d' ' -f1-3 /proc/loadavg))"
    "$BIN/llama-perplexity" -m "$GG/text-f16.gguf" -f "$corpus" -c "$CTX" --chunks "$CHUNKS" \
        -t "$THREADS" -b "$CTX" --kl-divergence-base "$DATA/kld-base-$SHAPE.bin" \
        >"$OUTDIR/ppl-base-$SHAPE.log" 2>&1
    log "llama.cpp: Q4_K_M against it"
    "$BIN/llama-perplexity" -m "$GG/text-q4_k_m.gguf" -c "$CTX" --chunks "$CHUNKS" \
        -t "$THREADS" -b "$CTX" --kl-divergence-base "$DATA/kld-base-$SHAPE.bin" \
        --kl-divergence >"$OUTDIR/kld-$SHAPE.log" 2>&1
    rm -f "$DATA/kld-base-$SHAPE.bin"
    log "OpsLens: Q4K against our f32 on the same tokens (load $(cut -d' ' -f1-3 /proc/loadavg))"
    RAYON_NUM_THREADS=$THREADS "$OURS" teacher --model "$HF" --text "$corpus" --ctx "$CTX" \
        --chunks "$CHUNKS" --mode q4k >"$OUTDIR/teacher-$SHAPE.json" 2>"$OUTDIR/teacher-$SHAPE.log"
    "$PY" "$PEER/llama_peer.py" agreement "$OUTDIR/teacher-$SHAPE.json" "$OUTDIR/kld-$SHAPE.log" \
        | tee "$OUTDIR/agreement-$SHAPE.md"
}

for stage in "${@:-all}"; do
    case "$stage" in
        setup) setup ;;
        build) build ;;
        ours) ours_build ;;
        checkpoint) checkpoint ;;
        convert) convert ;;
        bench) bench ;;
        agree) agree ;;
        all) setup; build; ours_build; checkpoint; convert; bench; agree ;;
        *) echo "unknown stage $stage" >&2; exit 2 ;;
    esac
done
