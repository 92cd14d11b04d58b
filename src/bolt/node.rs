//! In-memory B+tree nodes of the writer: their serialized size, Go's split
//! rule, and page images laid out exactly as Go bbolt lays them out (element
//! headers, then densely packed keys and values).

use std::borrow::Cow;

use super::page::{ELEMENT_SIZE, FLAG_BRANCH, FLAG_LEAF, PAGE_HEADER_SIZE, PageHeader};

/// Fewest keys Go keeps on each side of a split.
const MIN_KEYS_PER_PAGE: usize = 2;

/// One element of a node: a leaf entry, or a branch separator and child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item<'a> {
    /// Leaf element flags (bucket flag); 0 for branch items.
    pub flags: u32,
    /// The key.
    pub key: Cow<'a, [u8]>,
    /// The value (leaf) — empty for branch items.
    pub value: Cow<'a, [u8]>,
    /// The child page id (branch items only).
    pub child: u64,
}

impl<'a> Item<'a> {
    /// A leaf entry.
    pub fn leaf(flags: u32, key: Cow<'a, [u8]>, value: Cow<'a, [u8]>) -> Item<'a> {
        Item {
            flags,
            key,
            value,
            child: 0,
        }
    }

    /// A branch separator pointing at `child`.
    pub fn branch(key: Cow<'a, [u8]>, child: u64) -> Item<'a> {
        Item {
            flags: 0,
            key,
            value: Cow::Borrowed(&[]),
            child,
        }
    }

    fn size(&self) -> usize {
        ELEMENT_SIZE + self.key.len() + self.value.len()
    }
}

/// Serialized size of a node holding `items`: header plus elements.
pub fn node_size(items: &[Item<'_>]) -> usize {
    PAGE_HEADER_SIZE + items.iter().map(Item::size).sum::<usize>()
}

/// Splits `items` into nodes the way Go's `node.split` does: a node with at
/// most four items or smaller than a page stays whole; otherwise it is cut
/// where the running size would pass `page_size * fill`, keeping at least
/// two items on each side.
pub fn split<'a>(items: Vec<Item<'a>>, page_size: usize, fill: f64) -> Vec<Vec<Item<'a>>> {
    let threshold = ((page_size as f64) * fill.clamp(0.1, 1.0)) as usize;
    // Part lengths first (one pass, sizes summed once), then the items are
    // moved into their parts: linear in the number of items.
    let sizes: Vec<usize> = items.iter().map(Item::size).collect();
    let mut suffix = vec![PAGE_HEADER_SIZE; sizes.len() + 1];
    for i in (0..sizes.len()).rev() {
        suffix[i] = suffix[i + 1] + sizes[i];
    }
    let mut lens = Vec::new();
    let mut start = 0;
    loop {
        let rest = sizes.len() - start;
        if rest <= MIN_KEYS_PER_PAGE * 2 || suffix[start] < page_size {
            lens.push(rest);
            break;
        }
        let mut sz = PAGE_HEADER_SIZE;
        let mut index = 0;
        for i in 0..rest - MIN_KEYS_PER_PAGE {
            index = i;
            let el = sizes[start + i];
            if i >= MIN_KEYS_PER_PAGE && sz + el > threshold {
                break;
            }
            sz += el;
        }
        let n = index.max(1);
        lens.push(n);
        start += n;
    }
    let mut it = items.into_iter();
    lens.into_iter()
        .map(|n| it.by_ref().take(n).collect())
        .collect()
}

/// The page image of a node written at page `id`: `ceil(size / page_size)`
/// pages, zero-filled, overflow set accordingly.
pub fn page_image(id: u64, leaf: bool, items: &[Item<'_>], page_size: usize) -> Vec<u8> {
    let size = node_size(items);
    let pages = size.div_ceil(page_size).max(1);
    let mut buf = vec![0u8; pages * page_size];
    write_node(&mut buf, id, leaf, items, (pages - 1) as u32);
    buf
}

/// The image of an inline bucket's page (header id 0, no padding).
pub fn inline_image(items: &[Item<'_>]) -> Vec<u8> {
    let mut buf = vec![0u8; node_size(items)];
    write_node(&mut buf, 0, true, items, 0);
    buf
}

/// Pages a node holding `items` occupies.
pub fn pages_for(items: &[Item<'_>], page_size: usize) -> u64 {
    node_size(items).div_ceil(page_size).max(1) as u64
}

fn write_node(buf: &mut [u8], id: u64, leaf: bool, items: &[Item<'_>], overflow: u32) {
    let header = PageHeader {
        id,
        flags: if leaf { FLAG_LEAF } else { FLAG_BRANCH },
        count: items.len() as u16,
        overflow,
    };
    buf[..PAGE_HEADER_SIZE].copy_from_slice(&header.encode());
    let mut data = PAGE_HEADER_SIZE + ELEMENT_SIZE * items.len();
    for (i, it) in items.iter().enumerate() {
        let elem = PAGE_HEADER_SIZE + ELEMENT_SIZE * i;
        let pos = (data - elem) as u32;
        let h = &mut buf[elem..elem + ELEMENT_SIZE];
        if leaf {
            h[0..4].copy_from_slice(&it.flags.to_le_bytes());
            h[4..8].copy_from_slice(&pos.to_le_bytes());
            h[8..12].copy_from_slice(&(it.key.len() as u32).to_le_bytes());
            h[12..16].copy_from_slice(&(it.value.len() as u32).to_le_bytes());
        } else {
            h[0..4].copy_from_slice(&pos.to_le_bytes());
            h[4..8].copy_from_slice(&(it.key.len() as u32).to_le_bytes());
            h[8..16].copy_from_slice(&it.child.to_le_bytes());
        }
        buf[data..data + it.key.len()].copy_from_slice(&it.key);
        data += it.key.len();
        if leaf {
            buf[data..data + it.value.len()].copy_from_slice(&it.value);
            data += it.value.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bolt::page::Page;

    fn items(n: usize, vlen: usize) -> Vec<Item<'static>> {
        (0..n)
            .map(|i| {
                Item::leaf(
                    0,
                    Cow::Owned(format!("k{i:05}").into_bytes()),
                    Cow::Owned(vec![7; vlen]),
                )
            })
            .collect()
    }

    #[test]
    fn image_reads_back() {
        let its = items(3, 5);
        let img = page_image(9, true, &its, 4096);
        let p = Page::new(9, &img, 0).expect("page");
        assert_eq!(p.count(), 3);
        let e = p.leaf(2).expect("elem");
        assert_eq!(e.key, b"k00002");
        assert_eq!(e.value, &[7; 5]);
    }

    #[test]
    fn split_follows_go() {
        // Small nodes and nodes of <= 4 items are never split.
        assert_eq!(split(items(4, 3000), 4096, 0.5).len(), 1);
        assert_eq!(split(items(100, 1), 4096, 0.5).len(), 1);
        // 100 items of ~1 KiB at 50 % fill: two items per page, at least two
        // items on every side.
        let parts = split(items(100, 1000), 4096, 0.5);
        assert!(parts.iter().all(|p| p.len() >= 2));
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 100);
        assert!(parts.len() > 30);
    }

    #[test]
    fn big_values_overflow() {
        let its = items(1, 10000);
        let img = page_image(4, true, &its, 4096);
        assert_eq!(img.len(), 3 * 4096);
        assert_eq!(u32::from_le_bytes([img[12], img[13], img[14], img[15]]), 2);
    }
}
