import { agentCommand } from './agent-watch.js';
import { agentsCommand } from './agents.js';
import { backupCommand } from './backup.js';
import { mcpCommand } from './mcp.js';
import { encryptCommand, rekeyCommand } from './encrypt.js';
import { migrateCommand } from './migrate.js';
import { serveCommand } from './serve.js';
import { sourcesCommand } from './sources.js';
import { jobsCommand } from './jobs.js';
import { sweepCommand } from './sweep.js';
import { uploadCommand } from './upload.js';

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  serve: serveCommand,
  migrate: migrateCommand,
  sweep: sweepCommand,
  jobs: jobsCommand,
  sources: sourcesCommand,
  upload: uploadCommand,
  backup: backupCommand,
  mcp: mcpCommand,
  encrypt: encryptCommand,
  rekey: rekeyCommand,
  agents: (argv) => agentsCommand(argv),
  alerts: (argv) => agentsCommand(argv, true),
  agent: agentCommand,
};

const USAGE = `usage: observd [command] [flags]

commands:
  serve            run the daemon (default)
  migrate          apply database migrations and exit
  sweep --once     run one retention sweep and print what it purged
  jobs list | jobs run NAME
                   the daemon's periodic jobs; run one once against the data directory
  sources list [--query Q]
                   print every source as a JSON line
  sources create --id ID --kind KIND [--display-name NAME] [--token-file FILE]
                   create or update a source (prints a generated token once)
  upload --source ID --token-file FILE [--url URL] [--stream S] [--key K] FILE
                   upload one file to a running daemon (multipart, streamed)
  backup DEST      consistent copy of the database and its blobs, safe while serving
  mcp [--url URL] [--token-file FILE]
                   MCP server over stdio for a running daemon (token also from OBSERVD_TOKEN)
  encrypt          encrypt a plain data directory in place with the configured key (daemon stopped)
  rekey --new-key-file FILE
                   re-encrypt an encrypted data directory under a new key (daemon stopped)
  agents provision --batch-id B --agent-id ID [--out-dir DIR] [...]
                   provision capture agents (credentials once; --out-dir writes <id>.capture.toml)
  agents list | agents get ID | agents revoke ID [--reason R] | alerts
                   capture agents and missed-heartbeat alerts (--url URL: a running daemon)
  agent watch DIR --source ID [--credentials FILE] [--url URL] [--state FILE]
                   upload every new or changed media file of DIR, with heartbeats
                   (tokens from --credentials, a provisioned .capture.toml, or
                   OBSERVD_UPLOAD_TOKEN / OBSERVD_HEARTBEAT_TOKEN / OBSERVD_MACHINE_ID)

flags:
  --config FILE               config file (default ./config.toml if present)
  --bind HOST:PORT            listen address (default 127.0.0.1:4000)
  --data-dir DIR              data directory (default ./data)
  --admin-token-file FILE     file holding the admin token
  --readonly-token-file FILE  file holding the read-only token
  --log-level LEVEL           fatal|error|warn|info|debug|trace|silent

env: OBSERVD_ENCRYPTION_KEY_FILE  file holding the 32-byte encryption key (encryption.key_file)`;

/** Entry point: dispatches to a command and exits with its code; a bad flag exits 2, a startup error 1, with its message. */
export async function main(argv = process.argv.slice(2)): Promise<void> {
  const [first, ...rest] = argv;
  if (first === '--help' || first === '-h' || first === 'help') {
    console.log(USAGE);
    return;
  }
  const name = first && !first.startsWith('-') ? first : 'serve';
  const args = first && !first.startsWith('-') ? rest : argv;
  const command = COMMANDS[name];
  if (!command) {
    console.error(`unknown command "${name}"\n\n${USAGE}`);
    process.exit(2);
  }
  try {
    process.exitCode = await command(args);
  } catch (e) {
    // A flag parseArgs refuses is a usage error (2); anything else failed to start (1).
    const usage = String((e as NodeJS.ErrnoException).code ?? '').startsWith('ERR_PARSE_ARGS_');
    console.error(`observd: ${(e as Error).message}${usage ? `\n\n${USAGE}` : ''}`);
    process.exit(usage ? 2 : 1);
  }
}

await main();
