//! Link discovery and classification from the kernel's own facts (sysfs).
