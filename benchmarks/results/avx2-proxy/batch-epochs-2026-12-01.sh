#!/bin/bash
# LeNet-5: larger batches with a matching schedule, full recipe length (12 epochs of the 3,600 images), two seeds.
set -u
cd /work/main
export ONEDNN_MAX_CPU_ISA=AVX2 TF_CPP_MIN_LOG_LEVEL=3
OUT=/work/wt/s27
PY=.venv/bin/python
for seed in 42 43; do
L="\"model\": \"lenet5\", \"epochs\": 12, \"spe\": 8, \"seed\": $seed, \"env\": {\"TF_ENABLE_ONEDNN_OPTS\": \"1\"}"
$PY -m benchmarks.experiments.harness $OUT/lenet5-batch-seed$seed.json --pairs 1 \
 "{\"label\": \"recipe b64 lr3e-3 cosine\", $L}" \
 "{\"label\": \"b256 lr6e-3 warmup10%\", $L, \"batch\": 256, \"lr\": 0.006, \"schedule\": \"onecycle\", \"warmup\": 0.1}" \
 "{\"label\": \"b256 lr1.2e-2 warmup10%\", $L, \"batch\": 256, \"lr\": 0.012, \"schedule\": \"onecycle\", \"warmup\": 0.1}" \
 "{\"label\": \"b512 lr1.2e-2 warmup10%\", $L, \"batch\": 512, \"lr\": 0.012, \"schedule\": \"onecycle\", \"warmup\": 0.1}" \
 "{\"label\": \"b512 lr2.4e-2 warmup10%\", $L, \"batch\": 512, \"lr\": 0.024, \"schedule\": \"onecycle\", \"warmup\": 0.1}" \
 "{\"label\": \"today b64 (oneDNN off)\", \"model\": \"lenet5\", \"epochs\": 12, \"spe\": 8, \"seed\": $seed, \"env\": {\"TF_ENABLE_ONEDNN_OPTS\": \"0\"}}"
done
echo BATCH-DONE
#!/bin/bash
# DenseNet121: fewer epochs with the same warm-up + cosine schedule, on the compare stage's 3,600 images, test accuracy on 1,200.
set -u
cd /work/main
export ONEDNN_MAX_CPU_ISA=AVX2 TF_CPP_MIN_LOG_LEVEL=3
D='"model": "densenet121", "env": {"TF_ENABLE_ONEDNN_OPTS": "1"}'
.venv/bin/python -m benchmarks.experiments.harness /work/wt/s27/densenet121-epochs.json --pairs 1 \
 "{\"label\": \"recipe 5 epochs\", $D, \"epochs\": 5}" \
 "{\"label\": \"3 epochs, warm-up 1 + cosine\", $D, \"epochs\": 3}"
echo EPOCHS-DONE
