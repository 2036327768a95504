"""The user's say before risky tool calls: a level per tool (`policy`), the run's taint
(`taint`), pending questions and their answers in Redis (`store.Approvals`) and the agent
waiting for one (`gate.ApprovalGate`). This file imports nothing: `policy` is configuration
data that `settings` reads, and must load without Redis."""
