//! MCP server
