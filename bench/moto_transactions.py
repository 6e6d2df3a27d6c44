"""The delay bench's emulator launcher: local/moto_server.py, which now applies every patch itself
(including local/moto_transactions.py, the item-level transaction rollback the delay bench needed).

    python bench/moto_transactions.py -p PORT      (as local/moto_server.py)
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "local"))

import moto_server  # noqa: E402  local/moto_server.py

if __name__ == "__main__":
    moto_server.main()
