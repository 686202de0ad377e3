#!/usr/bin/env bash
# Test helper: makes <owner> the owner of NFT <token> in the registry of the server whose data
# dir is <data_dir>. Uses `panthers nft assign`; falls back to writing the nft_owners table.
# Usage: assign-nft.sh <data_dir> <token> <owner>     (PANTHERS_CLI: path of dist/bin/panthers.js)
set -euo pipefail
data_dir=$1 token=$2 owner=$3
if [ -n "${PANTHERS_CLI:-}" ] && PANTHERS_DATA_DIR="$data_dir" LOG_LEVEL=warn node "$PANTHERS_CLI" nft assign "$token" "$owner" >/dev/null 2>&1; then
  exit 0
fi
/usr/bin/python3 - "$data_dir" "$token" "$owner" <<'PY'
import glob, os, sqlite3, sys, time
data_dir, token, owner = sys.argv[1:4]
dbs = [p for p in glob.glob(os.path.join(data_dir, "*.db")) + glob.glob(os.path.join(data_dir, "*.sqlite*")) if not p.endswith(("-wal", "-shm"))]
if not dbs:
    sys.exit(f"no SQLite database in {data_dir}")
con = sqlite3.connect(dbs[0], timeout=10)
con.execute("INSERT INTO nft_owners (nft_token_id, owner, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (nft_token_id) DO UPDATE SET owner = excluded.owner, updated_at = excluded.updated_at",
            (token, owner, int(time.time() * 1000)))
con.commit()
PY
