#!/usr/bin/env bash
# The checks to run on a CUDA machine, in one command: the CUDA tests, the CUDA benchmarks and profiles.
#   bash benchmarks/gpu_tuning/gpu_session.sh tests bench profile   # stages, in order (default: tests bench scale profile)
#   stages: tests, triton_tests, bench, scale, variants (Triton launch settings; BASE_REV=<commit> times that
#           commit's kernel first, in the same run, from BASE_TREE if set), profile (torch profiler),
#           ncu (Nsight Compute), math (Triton's math vs torch)
# Logs and result files go to $RESULTS (default /tmp/gpu_session), packed into $OUT/gpu_session.tgz at the end
# when $OUT is set. Wheels under .whl/ (packages the GPU machine lacks) are installed into /tmp/site first.
# Each stage has its own time limit, so one slow stage cannot take the others' results with it.
set -u -o pipefail
export PYTHONUNBUFFERED=1
RESULTS=${RESULTS:-/tmp/gpu_session}
mkdir -p "$RESULTS"
pack() { [ -z "${OUT:-}" ] || tar czf "$OUT/gpu_session.tgz" -C "$RESULTS" .; }
trap pack EXIT

run_stage() {  # run_stage NAME SECONDS COMMAND...
    local name=$1 limit=$2 start=$SECONDS; shift 2
    timeout "$limit" "$@" > "$RESULTS/$name.log" 2>&1
    local status=$?
    echo "== $name: exit $status in $((SECONDS - start)) s"
    tail -n "${TAIL:-12}" "$RESULTS/$name.log"
    pack  # after every stage: what ran comes back even if the call is cut off later
    return $status  # the script's own exit status is the last stage's
}
bench() {  # bench TAG LIMIT ARGS...: the simulator target on CUDA; not --quiet, so that the log keeps the
    local tag=$1 limit=$2; shift 2  # cases measured before a time limit cuts the stage off (its JSON comes at the end)
    run_stage "bench-$tag" "$limit" python3 -m neuroloop_gpu.bench --device cuda --targets simulator \
        --out "$RESULTS" --tag "$tag" "$@"
}

stage_tests() {
    run_stage tests "${TESTS_LIMIT:-240}" python3 -m pytest -p no:cacheprovider -q -m gpu tests/test_gpu.py -rs
    run_stage tests-envs "${TESTS_LIMIT:-240}" python3 -m pytest -p no:cacheprovider -q tests/test_envs.py -k cuda
}
stage_triton_tests() {  # only the Triton backend's CUDA checks
    run_stage triton-tests "${TESTS_LIMIT:-240}" python3 -m pytest -p no:cacheprovider -q -m gpu tests/test_gpu.py \
        -k triton -rs
    run_stage triton-settings 60 python3 -m pytest -p no:cacheprovider -q tests/test_triton_backend.py -k bad_settings
}
stage_variants() {  # the Triton kernel's settings side by side; KERNELS: other kernel sources to compare
    local kernels="neuroloop_gpu/network/triton_kernel.py ${KERNELS:-}"
    local run="python3 benchmarks/gpu_tuning/triton_variants.py"
    local out="--json $RESULTS/variants.jsonl --label ${LABEL:-tree}" limit=${LIMIT_variants:-180}
    if [ -n "${BASE_REV:-}" ]; then  # an earlier commit's kernel at its default settings first, in the same run
        local base=${BASE_TREE:-/tmp/base_tree}  # (kernels whose arguments differ cannot share one stepper)
        if [ -z "${BASE_TREE:-}" ]; then  # BASE_TREE: that commit's files, already extracted (no .git there)
            rm -rf "$base" && mkdir -p "$base" && git archive "$BASE_REV" | tar -x -C "$base"
        fi
        local base_script=$base/benchmarks/gpu_tuning/triton_variants.py
        [ -f "$base_script" ] || base_script=$base/benchmarks/triton_variants.py  # commits before gpu_tuning/
        local base_run="env PYTHONPATH=/tmp/site:$base python3 $base_script"
        local base_out="--label $BASE_REV --json $RESULTS/variants.jsonl"
        run_stage variants-base-full "$limit" $base_run --size full --batch 8192 --warps 16 $base_out
        run_stage variants-base-small "$limit" $base_run --size small --batch 65536 --warps 2 $base_out
    fi
    # spike tiles, compile-time settings and register caps (SMALL_*, FULL_*, SETTINGS: the sweep; tile 0 is
    # the backend's, E:I the E and the I walks' own; settings KEY=VALUE, - the backend's; cap 0 none):
    # benchmarks/gpu_tuning/triton_registers.py gives each one's registers, spills and programs per SM without a GPU
    local settings="--settings ${SETTINGS:--}"
    run_stage variants-small "$limit" $run --size small --batch 65536 --kernels $kernels $settings \
        --warps ${SMALL_WARPS:-2} --tiles ${SMALL_TILES:-0 64 64:128} --maxnreg ${SMALL_CAPS:-128} $out
    run_stage variants-full "$limit" $run --size full --batch 8192 --kernels $kernels $settings \
        --warps ${FULL_WARPS:-16} --tiles ${FULL_TILES:-0 1024 2048:2048} --maxnreg ${FULL_CAPS:-0} $out
}
stage_bench() {  # one invocation per backend and synapse choice, each writing its own JSON; peers with the first
    local synapses backend peers=${PEERS:-reference}
    for synapses in ${SYNAPSES:-event}; do
        for backend in ${BACKENDS:-triton compiled eager}; do
            local limit_name="LIMIT_$backend"
            bench "$synapses-$backend" "${!limit_name:-${BENCH_LIMIT:-120}}" --sizes ${SIZES:-small full} \
                --batches ${BATCHES:-1 1024 16384} --windows 3 --repeats 2 --backends "$backend" \
                --peers $peers --sim-option synapses="$synapses"
            peers=none
        done
    done
}
stage_scale() {  # the triton backend at the small size, past the default batches
    bench scale-triton "${LIMIT_scale:-60}" --sizes small --batches 65536 131072 --windows 3 --repeats 2 \
        --backends triton --peers none
}
stage_profile() {  # torch.profiler of one window (PROFILE_BACKEND, PROFILE_BATCH): the host's share around the kernel
    local backend=${PROFILE_BACKEND:-triton} batch=${PROFILE_BATCH:-1024}
    TAIL=40 run_stage "profile-full-$backend-b$batch" 60 python3 benchmarks/gpu_tuning/profile_window.py --device cuda \
        --size full --batch "$batch" --backend "$backend" --synapses event
}
stage_ncu() {  # Nsight Compute on one launch (one window) of the Triton kernel, after the warm-up window's
    local size batch
    for config in ${NCU_CONFIGS:-full:2048 small:65536}; do  # full: building 16384 networks outlasts the limit
        size=${config%%:*} batch=${config##*:}
        TAIL=${NCU_TAIL:-60} run_stage "ncu-$size-b$batch" "${LIMIT_ncu:-90}" ncu --clock-control none \
            --kernel-name regex:steps_kernel --launch-skip 1 --launch-count 1 --import-source yes \
            --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
            --section SchedulerStats --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis \
            --section SourceCounters --export "$RESULTS/ncu-$size-b$batch" \
            python3 benchmarks/gpu_tuning/profile_window.py --device cuda --size "$size" --batch "$batch" \
            --backend triton --profiler none
        ncu --import "$RESULTS/ncu-$size-b$batch.ncu-rep" --page source --csv --print-source cuda,sass \
            > "$RESULTS/ncu-$size-b$batch-source.csv" 2>&1 || true  # stall samples per line, read off the machine
    done
}
stage_math() {  # Triton's float32 math against eager torch's bits (what the Triton backend relies on)
    TAIL=20 run_stage triton-math 60 python3 benchmarks/gpu_tuning/triton_math_check.py
}

stages=$(echo ${@:-tests bench scale profile})
for name in $stages; do  # every name checked before the first stage spends device time
    declare -F "stage_$name" >/dev/null || { echo "unknown stage '$name'" >&2; exit 2; }
done
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 1
    export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONPATH=${PYTHONPATH:-$PWD}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$RESULTS/gpu.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$RESULTS/gpu.txt"
for name in $stages; do "stage_$name"; done
