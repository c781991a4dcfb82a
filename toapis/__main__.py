"""`python -m toapis generate "a prompt" --aspect 3:2 --resolution 2k --n 1 --image ref.png --out out/`, `... health`
or `... models`."""

from toapis.cli import main

raise SystemExit(main())
