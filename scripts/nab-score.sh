#!/usr/bin/env bash
# Scores annals' anomaly detector with the Numenta Anomaly Benchmark's own Python scorer
# on the shared part of the corpus (../shared/data/nab: artificial*, realAWSCloudwatch,
# realKnownCause), beside the published detectors' result files on the same files.
#
#   scripts/nab-score.sh
#
# NAB_DIR: a checkout of github.com/numenta/NAB (its nab/, run.py, config/ and results/);
# without it, the script clones it into target/nab (needs the network) and says so when it
# cannot. NAB is kept out of this repository. The scorer runs in a virtualenv under target/
# with pandas<3 and simplejson (NAB's requirements.txt pins versions that do not build on
# current Python and are not needed to score).
#
# Prints NAB's normalised scores (standard, reward_low_FP_rate, reward_low_FN_rate):
#   - at fixed thresholds: annals at its default 0.5, the published detectors at the
#     thresholds NAB tuned for them on the whole corpus (config/thresholds.json);
#   - with NAB's threshold optimisation for annals on these files.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
if [[ ! -f $root/../shared/data/nab/combined_windows.json ]]; then
    echo "SKIP: no shared NAB corpus at $root/../shared/data/nab" >&2
    exit 0
fi
# Without "..": NAB's corpus reader finds its root in each file's path as a substring.
shared=$(cd "$root/../shared/data/nab" && pwd)
nab=${NAB_DIR:-$root/target/nab}
if [[ ! -f $nab/run.py ]]; then
    echo "cloning numenta/NAB into $nab" >&2
    if ! git clone -q --depth 1 https://github.com/numenta/NAB "$nab" >&2; then
        echo "SKIP: NAB could not be cloned; set NAB_DIR to a checkout of github.com/numenta/NAB" >&2
        exit 0
    fi
fi
nab=$(cd "$nab" && pwd)
venv=$root/target/nab-venv
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import pandas, simplejson' 2>/dev/null; then
    echo "installing pandas<3 and simplejson (pip) into $venv" >&2
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q "pandas<3" simplejson >&2
fi

work=$root/target/nab-score
rm -rf "$work"
mkdir -p "$work/results"
# annals' result files, one row per data row, in NAB's format.
cargo bench --profile release --bench trends -- --quick --nab-results "$work/results" >&2
# The published detectors' result files for the shared files only (the scorer refuses a
# result file the windows file does not name).
published=(ARTime numenta contextOSE knncad)
for detector in "${published[@]}"; do
    "$venv/bin/python" - "$shared/combined_windows.json" "$nab/results/$detector" "$work/results/$detector" "$detector" <<'EOF'
import json, os, shutil, sys
windows, source, target, detector = sys.argv[1:]
for name in json.load(open(windows)):
    group, file = name.split("/")
    os.makedirs(os.path.join(target, group), exist_ok=True)
    shutil.copy(os.path.join(source, group, f"{detector}_{file}"), os.path.join(target, group, f"{detector}_{file}"))
EOF
done
cp "$nab/config/thresholds.json" "$work/thresholds.json"
run() {
    (cd "$nab" && "$venv/bin/python" run.py --skipConfirmation -n 1 --dataDir "$shared/data" \
        --windowsFile "$shared/combined_windows.json" --resultsDir "$1" -t "$2" "${@:3}") >&2
}
# The null detector once: normalisation's baseline.
run "$work/results" "$work/thresholds.json" -d null --detect --optimize --score --normalize
# Fixed thresholds: annals at 0.5, the others at NAB's.
"$venv/bin/python" - "$work/thresholds.json" <<'EOF'
import json, sys
path = sys.argv[1]
thresholds = json.load(open(path))
thresholds["annals"] = {p: {"score": 0.0, "threshold": 0.5} for p in ("standard", "reward_low_FP_rate", "reward_low_FN_rate")}
json.dump(thresholds, open(path, "w"), indent=2)
EOF
cp -r "$work/results" "$work/results-optimised"
cp "$work/thresholds.json" "$work/thresholds-optimised.json"
run "$work/results" "$work/thresholds.json" -d "annals,$(IFS=,; echo "${published[*]}")" --score --normalize
# NAB's optimiser choosing annals' thresholds on these files.
run "$work/results-optimised" "$work/thresholds-optimised.json" -d annals --optimize --score --normalize
"$venv/bin/python" - "$work" <<'EOF'
import json, sys
work = sys.argv[1]
fixed = json.load(open(f"{work}/results/final_results.json"))
optimised = json.load(open(f"{work}/results-optimised/final_results.json"))
thresholds = json.load(open(f"{work}/thresholds-optimised.json"))["annals"]
profiles = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
print("NAB's scorer on the shared files (normalised):")
print(f"{'detector':<48}" + "".join(f"{p:>20}" for p in profiles))
print(f"{'annals (fixed 0.5)':<48}" + "".join(f"{fixed['annals'][p]:>20.2f}" for p in profiles))
label = "annals (NAB-optimised: " + ", ".join(f"{thresholds[p]['threshold']:.4f}" for p in profiles) + ")"
print(f"{label:<48}" + "".join(f"{optimised['annals'][p]:>20.2f}" for p in profiles))
for detector in ("ARTime", "numenta", "contextOSE", "knncad"):
    print(f"{detector + ' (NAB thresholds)':<48}" + "".join(f"{fixed[detector][p]:>20.2f}" for p in profiles))
EOF
