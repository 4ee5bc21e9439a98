#!/usr/bin/env node
import { runCli } from './cli/keyward-program.js';

// Exit explicitly: runtime clients (sockets kept alive) must not hold a finished command open.
process.exit(await runCli(process.argv));
