#!/usr/bin/env node
/**
 * `aikb`: the operator CLI. Every command is one or a few HTTP calls to a running aikb-server
 * (AIKB_URL), made with the admin token (ADMIN_TOKEN, --token-file) or a user token.
 */
import { runAikb } from './operator-cli/program';

// The exit code is set, not forced: stdout drains to a pipe before the process ends.
process.exitCode = await runAikb(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr });
