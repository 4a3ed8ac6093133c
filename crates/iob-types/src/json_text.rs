//! Scanning JSON string bytes 16 at a time: the run of plain bytes a string holds before its
//! closing quote, an escape or (for validation) a control byte. Shared by the collector's
//! scanner, which reads strings, and the canonical writer, which decides whether a string
//! needs escaping. It must never read outside the slice it is given.

/// The first byte at or after `from` that ends a run of plain string bytes: `"` or `\`, and
/// with `CHECKED` also a control byte (< 0x20, which JSON forbids unescaped). `b.len()` if
/// there is none.
#[inline]
pub fn string_stop<const CHECKED: bool>(b: &[u8], from: usize) -> usize {
    let mut i = from;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8,
            _mm_or_si128, _mm_set1_epi8,
        };
        // SAFETY: SSE2 is part of the x86_64 baseline; every load reads 16 bytes inside `b`
        // (`i + 16 <= b.len()`), unaligned loads being allowed by `_mm_loadu_si128`.
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let backslash = _mm_set1_epi8(b'\\' as i8);
            let control_max = _mm_set1_epi8(0x1f);
            while i + 16 <= b.len() {
                let v = _mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>());
                let mut hit = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
                if CHECKED {
                    // Unsigned `v <= 0x1f`: the maximum of the two is 0x1f.
                    let control = _mm_cmpeq_epi8(_mm_max_epu8(v, control_max), control_max);
                    hit = _mm_or_si128(hit, control);
                }
                let mask = _mm_movemask_epi8(hit) as u32;
                if mask != 0 {
                    return i + mask.trailing_zeros() as usize;
                }
                i += 16;
            }
        }
    }
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\\' || (CHECKED && c < 0x20) {
            return i;
        }
        i += 1;
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_stop_finds_the_first_special_byte_at_any_offset() {
        for len in 0..40 {
            for at in 0..=len {
                let mut b = vec![b'a'; len];
                if at < len {
                    b[at] = b'\\';
                }
                assert_eq!(string_stop::<false>(&b, 0), at);
                if at < len {
                    b[at] = 0x1f;
                    assert_eq!(string_stop::<true>(&b, 0), at);
                    assert_eq!(string_stop::<false>(&b, 0), len);
                    b[at] = 0xc3;
                    assert_eq!(string_stop::<true>(&b, 0), len);
                }
            }
        }
    }
}
