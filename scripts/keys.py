"""`python -m scripts.keys --out DIR`: a new set of keys for a deployment, each in a file
of its own (readable by its owner only), and the lines of `.env` that docker-compose.prod.yml
reads (`--env`, printed: one line each, `\\n` for a newline).

- `jwt-private.pem`: the auth service's user-token key (JWT_PRIVATE_KEY);
- `internal-<name>.pem`: each process's own internal key (INTERNAL_PRIVATE_KEY of that
  process; compose: <NAME>_INTERNAL_PRIVATE_KEY);
- `internal-public-keys.json`: every process's public key (INTERNAL_PUBLIC_KEYS, the same
  for all).

`make run` makes its own development set in `.data/keys/` (scripts/stack.py). Rotating the
user-token key: docs/operations.md.
"""

import argparse
import json
import sys
from pathlib import Path

from shared.keys import compact_public_key, generate_private_key, private_pem, public_pem

IDENTITIES = ("auth", "product", "cart", "order", "payment", "gateway", "admin-console")


def write_private(path: Path, pem: str) -> None:
    path.touch(mode=0o600, exist_ok=False)
    path.write_text(pem)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="a new or empty folder")
    parser.add_argument("--env", action="store_true", help="print the .env lines too")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    if any(out.iterdir()):
        print(f"{out} is not empty: keys are never overwritten", file=sys.stderr)
        return 1
    jwt_key = generate_private_key()
    write_private(out / "jwt-private.pem", private_pem(jwt_key))
    keys = {name: generate_private_key() for name in IDENTITIES}
    for name, key in keys.items():
        write_private(out / f"internal-{name}.pem", private_pem(key))
    public = {name: public_pem(key.public_key()) for name, key in keys.items()}
    (out / "internal-public-keys.json").write_text(json.dumps(public, indent=2) + "\n")
    if args.env:

        def one_line(pem: str) -> str:
            return pem.strip().replace("\n", "\\n")

        print(f"JWT_PRIVATE_KEY='{one_line(private_pem(jwt_key))}'")
        for name, key in keys.items():
            variable = name.upper().replace("-", "_") + "_INTERNAL_PRIVATE_KEY"
            print(f"{variable}='{one_line(private_pem(key))}'")
        pairs = ",".join(f"{name}:{compact_public_key(k.public_key())}" for name, k in keys.items())
        print(f"INTERNAL_PUBLIC_KEYS={pairs}")
    print(f"keys written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
