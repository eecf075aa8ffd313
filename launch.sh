#!/usr/bin/env bash
# Run a recipe folder's steps in order, each starting from the previous one's model.
#
#   ./launch.sh [RECIPE_DIR] [--accelerate CONFIG] [--accelerate-args "ARGS"]
#               [--out DIR] [--stages data,init,pretrain,sft,rl] [OVERRIDE ...]
#
# RECIPE_DIR defaults to recipes/tiny; CONFIG to recipes/accelerate/cpu.yaml.
# Steps run when their YAML exists in RECIPE_DIR (a stage named in --stages must
# have one): data.yaml and init.yaml with plain `rlcs`, pretrain/sft/rl.yaml through
# `accelerate launch`.
# OVERRIDE is key.path=value (applies to every training stage) or
# STAGE:key.path=value (one stage only), e.g. sft:optim.lr=1e-4.
set -euo pipefail
cd "$(dirname "$0")"

recipe_dir=recipes/tiny
if [[ $# -gt 0 && $1 != -* && $1 != *=* ]]; then recipe_dir=${1%/}; shift; fi
accelerate_config=recipes/accelerate/cpu.yaml
accelerate_args=""
out=""
stages="data,init,pretrain,sft,rl"
stages_given=""
overrides=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --accelerate) accelerate_config=$2; shift 2 ;;
    --accelerate-args) accelerate_args=$2; shift 2 ;;
    --out) out=${2%/}; shift 2 ;;
    --stages) stages=$2; stages_given=1; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *=*) overrides+=("$1"); shift ;;
    *) echo "launch.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -d $recipe_dir ]] || { echo "launch.sh: recipe folder not found: $recipe_dir" >&2; exit 2; }
[[ -f $accelerate_config ]] || { echo "launch.sh: accelerate config not found: $accelerate_config" >&2; exit 2; }
known_stages=" data init pretrain sft rl "
for stage in ${stages//,/ }; do
  [[ $known_stages == *" $stage "* ]] || { echo "launch.sh: unknown stage '$stage' in --stages (stages:$known_stages)" >&2; exit 2; }
  # a stage named on purpose must have its recipe; by default, steps without a YAML are skipped
  [[ -z $stages_given || -f $recipe_dir/$stage.yaml ]] || \
    { echo "launch.sh: --stages names '$stage', but $recipe_dir/$stage.yaml does not exist" >&2; exit 2; }
done
for item in ${overrides[@]+"${overrides[@]}"}; do
  if [[ ${item%%=*} == *:* && $known_stages != *" ${item%%:*} "* ]]; then
    echo "launch.sh: override '$item' names no stage (stages:$known_stages)" >&2; exit 2
  fi
done
out=${out:-outputs/$(basename "$recipe_dir")}
mkdir -p "$out"

# Overrides meant for STAGE: the unprefixed ones (training stages only) and STAGE:… ones.
stage_overrides() {
  local stage=$1 item
  for item in ${overrides[@]+"${overrides[@]}"}; do
    if [[ $item == *:*=* && ${item%%=*} == *:* ]]; then
      [[ ${item%%:*} == "$stage" ]] && printf '%s\n' "${item#*:}"
    elif [[ $stage != data && $stage != init ]]; then
      printf '%s\n' "$item"
    fi
  done
  return 0
}

timings="$out/launch_times.tsv"
: > "$timings"
previous_model=""
for stage in ${stages//,/ }; do
  recipe=$recipe_dir/$stage.yaml
  [[ -f $recipe ]] || continue
  mapfile -t extra < <(stage_overrides "$stage")
  started=$SECONDS
  echo "==> $stage ($recipe)"
  case $stage in
    data)
      rlcs data --config "$recipe" ${extra[@]+"${extra[@]}"} ;;
    init)
      rlcs init --config "$recipe" output_dir="$out/init" ${extra[@]+"${extra[@]}"}
      previous_model=$out/init/model ;;
    pretrain|sft|rl)
      chain=()
      [[ -n $previous_model ]] && chain=(model.path="$previous_model")
      # shellcheck disable=SC2086
      accelerate launch --config_file "$accelerate_config" $accelerate_args -m rlcs.cli "$stage" \
        --config "$recipe" output_dir="$out/$stage" ${chain[@]+"${chain[@]}"} ${extra[@]+"${extra[@]}"}
      previous_model=$out/$stage/model ;;
    *) echo "launch.sh: unknown stage '$stage'" >&2; exit 2 ;;
  esac
  printf '%s\t%s\n' "$stage" "$((SECONDS - started))" >> "$timings"
done

echo
echo "Done. Seconds per step:"
sed 's/^/  /' "$timings"
last=""
for stage in pretrain sft rl; do
  [[ -d $out/$stage ]] || continue
  echo "  $stage: model $out/$stage/model, metrics $out/$stage/metrics.jsonl"
  last=$stage
done
if [[ -n $last ]]; then
  echo "  report ($last): $(rlcs report "$out/$last" | sed 's/^report: //')"
fi
