//! A pull request's body (anyone's text) with Smithers' stack block put
//! in: never a panic, the block is then found, and everything before it
//! is the body's own text, unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smithers_github::stack_block::{
    MarkerKey, MemberState, StackBlock, StackMember, find_block, with_block,
};

fuzz_target!(|input: (&str, &str, u64)| {
    let (body, title, this) = input;
    let key = MarkerKey::new(b"0123456789abcdef0123456789abcdef");
    let block = StackBlock {
        stack: "run-1".into(),
        members: vec![StackMember {
            number: this,
            title: title.to_string(),
            state: MemberState::Open,
        }],
        this,
    };
    let with = with_block(body, &block, &key);
    let span = find_block(&with, &key, this).expect("the block put in is found");
    assert!(body.starts_with(&with[..span.start]) || with[..span.start].starts_with(body));
    assert_eq!(&with[span.clone()], block.render(&key));
});
