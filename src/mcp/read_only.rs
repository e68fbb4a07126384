//! `MAINTENANT_MCP_READ_ONLY`: a deployment that only wants answers serves
//! the read tools alone. The write tools ([`auth::WRITE_TOOLS`]) leave
//! `tools/list` and a call to one is refused, so an assistant neither sees
//! nor can use them. Applied at list and call time (the embedded
//! `tools.json` stays the one catalogue), by the server and by the stdio
//! proxy alike.

use rmcp::model::{CallToolResult, ContentBlock, Tool};

use super::auth;

/// `tools` without the write tools when `read_only`.
pub fn listed(tools: Vec<Tool>, read_only: bool) -> Vec<Tool> {
    if !read_only {
        return tools;
    }
    tools
        .into_iter()
        .filter(|t| !auth::is_write_tool(&t.name))
        .collect()
}

/// The tool error answering a call to write tool `name` in read-only mode;
/// `None` when the call may go ahead.
pub fn refusal(name: &str, read_only: bool) -> Option<CallToolResult> {
    (read_only && auth::is_write_tool(name)).then(|| {
        CallToolResult::error(vec![ContentBlock::text(format!(
            "{name} is disabled: this maintenant is read-only (MAINTENANT_MCP_READ_ONLY=true), \
             so it serves only the read tools; ask its operator to make the change"
        ))])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_lists_twelve_tools_and_refuses_every_write_tool() {
        let all = super::super::catalog::listing();
        assert_eq!(listed(all.clone(), false).len(), 18);
        let ro = listed(all, true);
        assert_eq!(ro.len(), 12);
        assert!(ro.iter().all(|t| !auth::is_write_tool(&t.name)));
        for name in auth::WRITE_TOOLS {
            let r = refusal(name, true).expect("refused");
            assert_eq!(r.is_error, Some(true));
            assert!(refusal(name, false).is_none());
        }
        assert!(refusal("get_health", true).is_none());
    }
}
