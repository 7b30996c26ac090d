#!/usr/bin/env bash
# Installs the Debian packages Kiln needs, skipping those already installed (and apt-get update
# when nothing is missing). One list for the README's commands and for CI.
#
#   bash tools/scripts/install-system-deps.sh train   # the main job: train LeNet-5 on Fashion-MNIST
#   bash tools/scripts/install-system-deps.sh test    # everything the test suite needs
set -euo pipefail

# Fashion-MNIST's IDX files; oneDNN and the compiler for @kiln/backend-cpu's native kernels.
train=(dataset-fashion-mnist libdnnl-dev g++)
# PyTorch for the reference fixtures, scikit-learn for the metric fixtures; Redis for the study
# queue tests; Chromium for the browser test and its SwiftShader Vulkan
# driver (the WebGPU tests run on it in Node); the Vulkan loader Dawn opens (Chromium's own copy
# is not on the library path).
test=("${train[@]}" python3-torch python3-torchvision python3-sklearn chromium libvulkan1 redis-server)

case "${1:-}" in
  train) wanted=("${train[@]}") ;;
  test) wanted=("${test[@]}") ;;
  *) echo "usage: bash $0 train|test" >&2; exit 2 ;;
esac

missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "installing: ${missing[*]}" >&2
"${sudo[@]}" apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
