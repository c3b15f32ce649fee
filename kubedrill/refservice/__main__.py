"""``python -m kubedrill.refservice --mode emulated|torch ...``"""

from kubedrill.refservice.server import main

main()
