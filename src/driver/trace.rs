//! Names for the opcodes the driver submits, for `tracing` events (feature `tracing`).

use io_uring::opcode;

/// The opcode's name as liburing spells it, lower case (`"recv"`, `"accept"`).
pub(crate) fn opcode_name(code: u32) -> &'static str {
    const NAMES: &[(u8, &str)] = &[
        (opcode::Nop::CODE, "nop"),
        (opcode::Read::CODE, "read"),
        (opcode::Write::CODE, "write"),
        (opcode::Readv::CODE, "readv"),
        (opcode::Writev::CODE, "writev"),
        (opcode::Fsync::CODE, "fsync"),
        (opcode::PollAdd::CODE, "poll_add"),
        (opcode::SendMsg::CODE, "sendmsg"),
        (opcode::RecvMsg::CODE, "recvmsg"),
        (opcode::Timeout::CODE, "timeout"),
        (opcode::Accept::CODE, "accept"),
        (opcode::AsyncCancel::CODE, "async_cancel"),
        (opcode::Connect::CODE, "connect"),
        (opcode::OpenAt::CODE, "openat"),
        (opcode::Close::CODE, "close"),
        (opcode::Statx::CODE, "statx"),
        (opcode::Send::CODE, "send"),
        (opcode::Recv::CODE, "recv"),
        (opcode::RenameAt::CODE, "renameat"),
        (opcode::UnlinkAt::CODE, "unlinkat"),
        (opcode::MkDirAt::CODE, "mkdirat"),
        (opcode::LinkAt::CODE, "linkat"),
        (opcode::SymlinkAt::CODE, "symlinkat"),
        (opcode::Ftruncate::CODE, "ftruncate"),
        (opcode::WaitId::CODE, "waitid"),
    ];
    NAMES
        .iter()
        .find(|(c, _)| u32::from(*c) == code)
        .map_or("other", |(_, name)| name)
}
