//! The `cidr*` functions, with Terraform's rules (which Packer uses): IPv4 and IPv6 prefixes
//! such as `10.0.0.0/16`; host bits set in the prefix are ignored; host numbers may be negative
//! to count from the end of the range.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hcl::Value;
use hcl::eval::FuncArgs;

use super::{int_arg, s, str_arg};

/// A parsed prefix: its first address as a number, the prefix length and the address width.
#[derive(Debug, Clone, Copy)]
struct Prefix {
    base: u128,
    len: u32,
    bits: u32,
}

impl Prefix {
    fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("not a CIDR prefix such as `10.0.0.0/16`: `{text}`");
        let (addr, len) = text.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let len: u32 = len.parse().map_err(|_| bad())?;
        let (value, bits) = match addr {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
            IpAddr::V6(a) => (u128::from(a), 128),
        };
        if len > bits {
            return Err(format!(
                "prefix length {len} is too long for an IPv{} address",
                if bits == 32 { 4 } else { 6 }
            ));
        }
        Ok(Self {
            base: value & mask(len, bits),
            len,
            bits,
        })
    }

    /// Number of addresses in the prefix, saturated at `u128::MAX`.
    fn size(&self) -> u128 {
        1u128.checked_shl(self.bits - self.len).unwrap_or(u128::MAX)
    }

    fn addr(&self, value: u128) -> String {
        if self.bits == 32 {
            Ipv4Addr::from(value as u32).to_string()
        } else {
            Ipv6Addr::from(value).to_string()
        }
    }

    fn show(&self) -> String {
        format!("{}/{}", self.addr(self.base), self.len)
    }

    /// The `netnum`-th subnet with `newbits` more prefix bits.
    fn subnet(&self, newbits: i64, netnum: i64) -> Result<Self, String> {
        let newbits =
            u32::try_from(newbits).map_err(|_| "`newbits` must not be negative".to_owned())?;
        let len = self.len + newbits;
        if len > self.bits {
            return Err(format!(
                "cannot add {newbits} bits to a /{} prefix: only {} bits remain",
                self.len,
                self.bits - self.len
            ));
        }
        let count = 1u128.checked_shl(newbits).unwrap_or(u128::MAX);
        let netnum = u128::try_from(netnum)
            .ok()
            .filter(|n| *n < count)
            .ok_or_else(|| format!("network number must be between 0 and {}", count - 1))?;
        let shift = self.bits - len;
        let offset = netnum.checked_shl(shift).unwrap_or(0);
        Ok(Self {
            base: self.base | offset,
            len,
            bits: self.bits,
        })
    }
}

fn mask(len: u32, bits: u32) -> u128 {
    let all = if bits == 32 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    let host = all.checked_shr(len).unwrap_or(0);
    all & !host
}

pub(super) fn cidrhost(args: FuncArgs) -> Result<Value, String> {
    let p = Prefix::parse(&str_arg(&args, 0)?)?;
    let n = int_arg(&args, 1)?;
    let size = p.size();
    let offset = if n >= 0 {
        u128::try_from(n).ok().filter(|n| *n < size)
    } else {
        size.checked_sub(u128::from(n.unsigned_abs()))
    };
    let offset = offset.ok_or_else(|| {
        format!("host number {n} is outside the prefix, which has {size} addresses")
    })?;
    Ok(s(p.addr(p.base + offset)))
}

pub(super) fn cidrnetmask(args: FuncArgs) -> Result<Value, String> {
    let p = Prefix::parse(&str_arg(&args, 0)?)?;
    if p.bits != 32 {
        return Err("`cidrnetmask` takes an IPv4 prefix only".to_owned());
    }
    Ok(s(p.addr(mask(p.len, 32))))
}

pub(super) fn cidrsubnet(args: FuncArgs) -> Result<Value, String> {
    let p = Prefix::parse(&str_arg(&args, 0)?)?;
    let sub = p.subnet(int_arg(&args, 1)?, int_arg(&args, 2)?)?;
    Ok(s(sub.show()))
}

/// Consecutive subnets of the given extra bits each, every one starting right after the
/// previous one (aligned to its own size), as Terraform allocates them.
pub(super) fn cidrsubnets(args: FuncArgs) -> Result<Value, String> {
    let p = Prefix::parse(&str_arg(&args, 0)?)?;
    let end = p.base + (p.size() - 1);
    let mut next = p.base;
    let mut out = Vec::new();
    for i in 1..args.len() {
        let sub = p.subnet(int_arg(&args, i)?, 0)?;
        let size = sub.size();
        // Align the next free address up to this subnet's size.
        let start = next
            .checked_add(size - 1)
            .map(|v| v & !(size - 1))
            .filter(|start| start.checked_add(size - 1).is_some_and(|last| last <= end))
            .ok_or_else(|| {
                format!(
                    "not enough room left in {} for a /{} subnet (argument {})",
                    p.show(),
                    sub.len,
                    i + 1
                )
            })?;
        out.push(s(Prefix { base: start, ..sub }.show()));
        next = start + size;
    }
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_arithmetic() {
        let p = Prefix::parse("10.1.2.3/16").unwrap();
        assert_eq!(p.show(), "10.1.0.0/16");
        assert_eq!(p.subnet(8, 2).unwrap().show(), "10.1.2.0/24");
        assert_eq!(
            Prefix::parse("fd00::/56")
                .unwrap()
                .subnet(8, 255)
                .unwrap()
                .show(),
            "fd00:0:0:ff::/64"
        );
        assert!(p.subnet(17, 0).is_err());
        assert!(p.subnet(2, 4).is_err());
        assert!(Prefix::parse("10.0.0.0/33").is_err());
        assert!(Prefix::parse("10.0.0.0").is_err());
    }
}
