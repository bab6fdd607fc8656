#!/usr/bin/env bash
# Mutation testing of the trust checks with cargo-mutants (crates.io).
#
# Every mutant of the functions that decide what a node trusts — snapshot
# discovery and download, chunk and manifest verification, the handshake
# proof, the commit rule, vertex and execution checks — must be caught by
# a test of bluepods-core (or be named equivalent in the README).
#
#   scripts/mutants.sh            the trust-check functions (~130 mutants)
#   scripts/mutants.sh --files    every mutant of the trust-critical files
#                                 (~600; hours on two cores)
#   scripts/mutants.sh --list     list the mutants, run nothing
#
# Extra arguments go to cargo-mutants (e.g. -j 2, --in-diff FILE). The
# fuzz-corpus replay is skipped (it only decodes and replays inputs; it
# catches none of these mutants and takes half the test time). Results
# land in mutants.out/ (caught.txt, missed.txt, unviable.txt, timeout.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo mutants --version >/dev/null 2>&1; then
    echo "== installing cargo-mutants"
    cargo install --locked cargo-mutants
fi

files=(
    core/src/node/snapshot/mod.rs
    core/src/node/snapshot/download.rs
    core/src/snapshot/chunk.rs
    core/src/snapshot/mod.rs
    core/src/node/handshake/mod.rs
    core/src/peers.rs
    core/src/consensus.rs
    core/src/vertex.rs
    core/src/exec.rs
)
file_args=()
for f in "${files[@]}"; do file_args+=(-f "$f"); done

# The functions that check what a peer sent or what commits.
checks='attesters|on_manifest|Manifest::check|verify_chunk|decompress_chunk|Download::is_complete|Download::finish|on_chunk|check_hello|on_proof|proof_message|directly_committable|anchor_chain|check_links|Vertex::verify|try_apply|owned'

mode=checks
if [[ "${1:-}" == "--files" ]]; then mode=files; shift; fi
if [[ "${1:-}" == "--list" ]]; then
    shift
    if [[ $mode == files ]]; then
        cargo mutants --list -p bluepods-core "${file_args[@]}" "$@"
    else
        cargo mutants --list -p bluepods-core "${file_args[@]}" -F "$checks" "$@"
    fi
    exit 0
fi

select=()
[[ $mode == checks ]] && select=(-F "$checks")
# The property tests' fixed CI seed: a mutant is caught or not, every run
# (unseeded, random schedules caught some mutants in one run, not the next).
export PROPTEST_RNG_SEED=20261125
start=$(date +%s)
status=0
cargo mutants -p bluepods-core --test-package bluepods-core "${file_args[@]}" "${select[@]}" \
    --timeout 120 "$@" -- -- --skip every_committed_corpus_input_passes_its_target || status=$?
echo "== $(( $(date +%s) - start )) s"
for k in caught missed unviable timeout; do
    printf '%-9s %s\n' "$k" "$(wc -l < "mutants.out/$k.txt" 2>/dev/null || echo 0)"
done
exit $status
