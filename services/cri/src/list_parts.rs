//! A finished list sent as a stream of parts, as the KEP-5825 `Stream*` RPCs answer: every
//! item in exactly one part, no part empty (so no part at all for an empty list).

use tonic::Status;

/// Items in one streamed message: far below gRPC's 4 MiB default for any item of these lists.
pub const ITEMS_PER_PART: usize = 256;

/// A finished list on its way out in parts.
pub type ListStream<T> = tokio_stream::Iter<std::vec::IntoIter<Result<T, Status>>>;

/// `items` as a stream of `part`s of at most [`ITEMS_PER_PART`] items.
pub fn in_parts<T, P>(items: Vec<T>, part: impl Fn(Vec<T>) -> P) -> ListStream<P> {
    let mut items = items.into_iter().peekable();
    let mut parts = Vec::new();
    while items.peek().is_some() {
        parts.push(Ok(part(items.by_ref().take(ITEMS_PER_PART).collect())));
    }
    tokio_stream::iter(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    async fn part_sizes(items: usize) -> Vec<usize> {
        in_parts(vec![0u8; items], |part| part.len())
            .map(|part| part.unwrap())
            .collect()
            .await
    }

    #[tokio::test]
    async fn a_list_goes_out_in_full_parts_and_a_last_short_one() {
        assert_eq!(part_sizes(0).await, Vec::<usize>::new());
        assert_eq!(part_sizes(1).await, [1]);
        assert_eq!(part_sizes(ITEMS_PER_PART).await, [ITEMS_PER_PART]);
        assert_eq!(
            part_sizes(2 * ITEMS_PER_PART + 3).await,
            [ITEMS_PER_PART, ITEMS_PER_PART, 3]
        );
    }
}
