/* `trifle mcp` (docs/mcp.md): the Model Context Protocol server of the CLI. */
#ifndef TRIFLE_CLI_MCP_H
#define TRIFLE_CLI_MCP_H

#include "cli.h"

/* Serve MCP on stdin/stdout until end of input, with the store and options of @p args. Tool
 * failures go to the client, never end the loop. Returns 0 at end of input, TRIFLE_ERROR when
 * stdin or stdout fails, TRIFLE_ENOMEM. */
int cli_mcp_serve(const cli_args *args, trifle_error *err);

#endif
