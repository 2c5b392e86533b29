#!/bin/sh
# Regenerate the figures shown in README.md and the docs site with the chiralnet command itself.
# Run from anywhere: sh docs/figures/regenerate.sh   (uses $PYTHON, default python3)
set -e
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" MPLBACKEND=Agg
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m chiralnet paper --out "$tmp/paper" --dpi 100 > /dev/null
"$PY" -m chiralnet run examples/lattice.toml --out "$tmp/lattice" > /dev/null
"$PY" examples/ergotropy.py "$tmp" > /dev/null
"$PY" examples/long_chain_discharge.py "$tmp" > /dev/null
cp "$tmp/paper/fig3a.png" docs/figures/paper_fig3a.png
cp "$tmp/paper/fig4c.png" docs/figures/paper_fig4c.png
cp "$tmp/lattice/network.png" docs/figures/lattice_network.png
cp "$tmp/ergotropy.png" docs/figures/ergotropy_hot_reservoirs.png
cp "$tmp/long_chain_discharge.png" docs/figures/long_chain_discharge_profile.png
"$PY" examples/squeezed_battery.py "$tmp" > /dev/null
cp "$tmp/squeezed_battery_work.png" docs/figures/squeezed_battery_work.png
"$PY" -m chiralnet study disorder --out "$tmp/disorder" --no-progress > /dev/null
cp "$tmp/disorder/disorder.png" docs/figures/study_disorder.png
for name in topology-scaling nonreciprocal-gain charging-line squeezed-reservoirs counter-rotating two-photon-pump; do
  "$PY" -m chiralnet study "$name" --out "$tmp/$name" --no-progress > /dev/null
  cp "$tmp/$name/$(echo "$name" | tr - _).png" "docs/figures/study_$(echo "$name" | tr - _).png"
done
ls -l docs/figures/*.png
