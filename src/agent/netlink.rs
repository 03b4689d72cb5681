//! Netlink: link and route events, interface snapshots, the active default route.
