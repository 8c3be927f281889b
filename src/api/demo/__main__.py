"""`python -m api.demo [--db URL] demo [--seed N] …` (the same command as `shipledger demo`)."""

from api.demo.command import main

raise SystemExit(main())
