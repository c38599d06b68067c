//! Cursor-style paging with loop guards, for every vendor's list endpoints. Each vendor's page
//! envelope (and how it names the next page) lives in that vendor's file.

use std::future::Future;

use crate::http::HttpError;

/// Most pages a [`Pager`] follows before giving up (a loop guard against a broken cursor).
pub const MAX_PAGES: usize = 1000;

/// Drives cursor-style paging with loop guards. Usage:
///
/// ```ignore
/// let mut pager = Pager::new(&path);
/// let mut all = Vec::new();
/// while let Some(cursor) = pager.next_cursor() {      // None once the last page was read
///     let page = fetch(cursor).await?;                 // cursor: Option<C>, None for page one
///     all.extend(page.items);
///     pager.advance(page.next)?;                       // Err on a repeated cursor or > MAX_PAGES
/// }
/// ```
#[derive(Debug)]
pub struct Pager<C> {
    endpoint: String,
    cursor: Option<C>,
    seen: Vec<C>,
    pages: usize,
    done: bool,
}

impl<C: Clone + PartialEq> Pager<C> {
    pub fn new(endpoint: &str) -> Pager<C> {
        Pager {
            endpoint: endpoint.to_owned(),
            cursor: None,
            seen: Vec::new(),
            pages: 0,
            done: false,
        }
    }

    /// The cursor of the page to fetch next (`Some(None)` for the first page), or `None` when done.
    pub fn next_cursor(&self) -> Option<Option<C>> {
        (!self.done).then(|| self.cursor.clone())
    }

    /// Records the `next` cursor of the page just read (`None` on the last page).
    pub fn advance(&mut self, next: Option<C>) -> Result<(), HttpError> {
        self.pages += 1;
        match next {
            None => {
                self.done = true;
                Ok(())
            }
            Some(_) if self.pages >= MAX_PAGES => {
                self.done = true;
                Err(HttpError::Protocol {
                    endpoint: self.endpoint.clone(),
                    reason: format!("more than {MAX_PAGES} pages"),
                })
            }
            Some(next) if self.seen.contains(&next) => {
                self.done = true;
                Err(HttpError::Protocol {
                    endpoint: self.endpoint.clone(),
                    reason: "paging cursor repeated".into(),
                })
            }
            Some(next) => {
                self.seen.push(next.clone());
                self.cursor = Some(next);
                Ok(())
            }
        }
    }

    /// Pages read so far.
    pub fn pages(&self) -> usize {
        self.pages
    }
}

/// One page: its items and the cursor of the next page (`None` on the last page).
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

/// One paged list of a vendor: how to fetch the page at a cursor. [`paginate`] does the rest.
pub trait PageSource: Send {
    type Item: Send;
    type Cursor: Clone + PartialEq + Send + Sync;

    /// The first page for `None`, else the page `cursor` names.
    fn fetch(
        &mut self,
        cursor: Option<Self::Cursor>,
    ) -> impl Future<Output = Result<Page<Self::Item, Self::Cursor>, HttpError>> + Send;
}

/// All items of a paged list, following its cursors with a [`Pager`]'s loop guards.
pub async fn paginate<S: PageSource>(
    endpoint: &str,
    source: &mut S,
) -> Result<Vec<S::Item>, HttpError> {
    let mut all = Vec::new();
    let mut pager = Pager::new(endpoint);
    while let Some(cursor) = pager.next_cursor() {
        let page = source.fetch(cursor).await?;
        all.extend(page.items);
        pager.advance(page.next)?;
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pager_follows_and_guards() {
        let pages = [vec![1, 2], vec![3], vec![4]];
        let mut pager = Pager::new("/x");
        let mut all = Vec::new();
        while let Some(cursor) = pager.next_cursor() {
            let i: usize = cursor.unwrap_or(0);
            all.extend(pages[i].clone());
            pager
                .advance((i + 1 < pages.len()).then_some(i + 1))
                .expect("no loop");
        }
        assert_eq!(all, vec![1, 2, 3, 4]);
        assert_eq!(pager.pages(), 3);
        let mut looping = Pager::new("/x");
        assert!(looping.advance(Some(1)).is_ok());
        assert!(matches!(
            looping.advance(Some(1)),
            Err(HttpError::Protocol { .. })
        ));
        assert_eq!(looping.next_cursor(), None);
    }
}
