//! Size-prefixed frames. Every Kafka request is `size: i32` followed by `size` bytes; the size
//! is checked against `socket.request.max.bytes` before a single byte of the body is read.

/// Why a frame's size prefix is refused; the connection is then closed unread.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame size {0} is negative")]
    Negative(i32),
    #[error("frame size {size} exceeds socket.request.max.bytes {max}")]
    TooLarge { size: usize, max: usize },
    #[error("frame of {0} bytes is too short to hold a request header")]
    TooShort(usize),
}

/// The smallest possible request: api key, api version, correlation id, client id length.
pub const MIN_REQUEST_SIZE: usize = 2 + 2 + 4 + 2;

/// Checks a size prefix read from the socket and returns the body length to read.
pub fn check_size_prefix(prefix: [u8; 4], max: usize) -> Result<usize, FrameError> {
    let size = i32::from_be_bytes(prefix);
    if size < 0 {
        return Err(FrameError::Negative(size));
    }
    let size = size as usize;
    if size > max {
        return Err(FrameError::TooLarge { size, max });
    }
    if size < MIN_REQUEST_SIZE {
        return Err(FrameError::TooShort(size));
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_sizes_within_the_limit() {
        assert_eq!(check_size_prefix(100i32.to_be_bytes(), 100), Ok(100));
    }

    #[test]
    fn refuses_negative_oversized_and_tiny_frames() {
        assert_eq!(
            check_size_prefix((-1i32).to_be_bytes(), 100),
            Err(FrameError::Negative(-1))
        );
        assert_eq!(
            check_size_prefix(101i32.to_be_bytes(), 100),
            Err(FrameError::TooLarge {
                size: 101,
                max: 100
            })
        );
        assert_eq!(
            check_size_prefix(3i32.to_be_bytes(), 100),
            Err(FrameError::TooShort(3))
        );
    }
}
