"""`python -m toapis generate "a prompt" --size 1024x1024 --n 1 --image ref.png --out out/`, or `... health`."""

from toapis.cli import main

raise SystemExit(main())
