"""eri-extract's exit codes, in one place (the CLI's --help quotes them)."""

EXIT_OK, EXIT_PARTIAL, EXIT_REFUSED, EXIT_NOTHING, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES_HELP = ("Exit codes: 0 everything planned is in the store; 1 partial: some clips failed (each is "
                   "recorded with its reason in STORE/<feature>/<fingerprint>/errors.jsonl; the rest is stored; "
                   "--rerun-failed retries them); 2 refused before any work: bad input or options, a requested "
                   "feature that cannot be computed (e.g. weights missing: the message gives the fetch command), "
                   "a store that cannot be written; 3 nothing worked: a feature had clips to compute and produced "
                   "none; 130 interrupted (Ctrl-C; run the same command to continue).")
