#!/usr/bin/env bash
# Renders a gatekit report in a real headless browser and saves a screenshot, to check the page
# as a reader sees it (fonts, the embedded figure, the table's highlighted pick).
#   bash docs/report_screenshot.sh runs/quickstart/report.html shot.png
# Needs Chromium or Google Chrome on PATH (Debian: apt-get install chromium; the CI machine has
# none, so no test runs this).
set -euo pipefail
page=$(realpath "${1:?usage: report_screenshot.sh REPORT.html OUT.png}")
out=$(realpath -m "${2:?usage: report_screenshot.sh REPORT.html OUT.png}")
for b in chromium chromium-browser google-chrome google-chrome-stable; do
  if command -v "$b" >/dev/null; then browser=$b; break; fi
done
: "${browser:?no Chromium or Chrome on PATH}"
"$browser" --headless=new --disable-gpu --no-sandbox --hide-scrollbars --window-size=1400,1600 \
  --screenshot="$out" "file://$page"
echo "wrote $out"
