#!/bin/bash
# Issue 13, sixth phase: the levers not yet measured, on the AVX2 stand-in (ONEDNN_MAX_CPU_ISA=AVX2, XLA held to AVX2).
set -u
cd /work/main
export ONEDNN_MAX_CPU_ISA=AVX2 XLA_FLAGS=--xla_cpu_max_isa=AVX2 TF_CPP_MIN_LOG_LEVEL=3
OUT=/work/wt/s27
PY=.venv/bin/python
D='"model": "densenet121", "epochs": 3, "max_train": 1024, "validate": false, "test": false'
$PY -m benchmarks.experiments.harness $OUT/densenet121-levers.json --pairs 2 \
 "{\"label\": \"today\", $D, \"env\": {\"TF_ENABLE_ONEDNN_OPTS\": \"0\"}}" \
 "{\"label\": \"onednn\", $D, \"env\": {\"TF_ENABLE_ONEDNN_OPTS\": \"1\"}}" \
 "{\"label\": \"onednn intra2 inter1\", $D, \"threads\": [2, 1], \"env\": {\"TF_ENABLE_ONEDNN_OPTS\": \"1\"}}" \
 "{\"label\": \"onednn intra1 inter2\", $D, \"threads\": [1, 2], \"env\": {\"TF_ENABLE_ONEDNN_OPTS\": \"1\"}}" \
 "{\"label\": \"onednn channels_first\", $D, \"channels\": \"first\", \"env\": {\"TF_ENABLE_ONEDNN_OPTS\": \"1\"}}" \
 "{\"label\": \"jax\", $D, \"backend\": \"jax\"}"
L='"model": "lenet5", "epochs": 3, "spe": 8'
$PY -m benchmarks.experiments.harness $OUT/lenet5-levers.json --pairs 3 \
 "{\"label\": \"today\", $L, \"env\": {\"TF_ENABLE_ONEDNN_OPTS\": \"0\"}}" \
 "{\"label\": \"onednn\", $L, \"env\": {\"TF_ENABLE_ONEDNN_OPTS\": \"1\"}}" \
 "{\"label\": \"onednn intra2 inter1\", $L, \"threads\": [2, 1], \"env\": {\"TF_ENABLE_ONEDNN_OPTS\": \"1\"}}" \
 "{\"label\": \"onednn intra1 inter2\", $L, \"threads\": [1, 2], \"env\": {\"TF_ENABLE_ONEDNN_OPTS\": \"1\"}}" \
 "{\"label\": \"onednn intra1 inter1\", $L, \"threads\": [1, 1], \"env\": {\"TF_ENABLE_ONEDNN_OPTS\": \"1\"}}" \
 "{\"label\": \"onednn channels_first\", $L, \"channels\": \"first\", \"env\": {\"TF_ENABLE_ONEDNN_OPTS\": \"1\"}}" \
 "{\"label\": \"jax\", $L, \"backend\": \"jax\"}"
echo LEVERS-DONE
