//! The roles, permissions and organizations of a generated tenant (`--generate N`).
//!
//! Drawn from a stream of their own (`ChaCha8Rng::seed_from_u64(seed)`, stream 1; the users
//! use stream 0), one user at a time in generation order, so the generated users stay byte
//! for byte what they were, and the grants depend only on `(count, seed)`.
//!
//! # The shape
//!
//! - 4 resource servers ([`APIS`]) with 3 to 5 scopes each.
//! - 36 roles, "<area> <level>" (`Orders Admin`, `Billing Viewer`, ...), made in that order;
//!   about 70% carry 1 to 4 permissions of their area's API (areas beyond the four APIs draw
//!   from any). Popularity falls with the index: role `i` has weight `36 - i`.
//! - Tenant-wide roles per user: none 20%, one 45%, two 25%, three 10% (a repeated draw is
//!   kept once, so a few have fewer).
//! - Direct permissions: 6% of users, 1 to 3 random scopes.
//! - 5 organizations ([`ORGS`]). 8% of users belong to one, 1% more to two; each membership
//!   has 0 to 2 member roles drawn from the first 12 roles. An organization that reached the
//!   facts' 100k members takes no more (so beyond about 5M users).
//!
//! Memory: each user's grants are a few indexes (see `authz.rs`), and users without any grant
//! (about 18%) cost nothing.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::authz::{Authz, Change, OrgIx, Perm, RoleIx};
use super::generate::Dice;

/// Resource servers: identifier, name, scopes.
pub(crate) const APIS: [(&str, &str, &[&str]); 4] = [
    (
        "https://api.example.com/orders",
        "Orders API",
        &[
            "read:orders",
            "create:orders",
            "update:orders",
            "delete:orders",
            "export:orders",
        ],
    ),
    (
        "https://api.example.com/billing",
        "Billing API",
        &[
            "read:invoices",
            "pay:invoices",
            "read:payment_methods",
            "update:payment_methods",
        ],
    ),
    (
        "https://api.example.com/catalog",
        "Catalog API",
        &["read:products", "update:products", "publish:products"],
    ),
    (
        "https://reports.example.com/",
        "Reports API",
        &[
            "read:reports",
            "create:reports",
            "share:reports",
            "admin:reports",
        ],
    ),
];

const AREAS: [&str; 6] = [
    "Orders",
    "Billing",
    "Catalog",
    "Reports",
    "Support",
    "Inventory",
];
const LEVELS: [&str; 6] = ["Admin", "Editor", "Viewer", "Auditor", "Manager", "Agent"];

/// Organizations: name, display name.
pub(crate) const ORGS: [(&str, &str); 5] = [
    ("acme", "Acme Corporation"),
    ("globex", "Globex"),
    ("initech", "Initech"),
    ("umbrella-corp", "Umbrella Corp."),
    ("stark_industries", "Stark Industries"),
];

/// Member roles come from the first roles only.
const MEMBER_ROLES: usize = 12;

/// Hands out each generated user's grants.
pub(crate) struct AuthzGenerator {
    dice: Dice,
    roles: Vec<RoleIx>,
    weights: Vec<u32>,
    perms: Vec<Perm>,
    orgs: Vec<OrgIx>,
}

impl AuthzGenerator {
    /// Creates the resource servers, roles and organizations in `authz` (reusing those a seed
    /// file already made, by name).
    pub(crate) fn new(seed: u64, authz: &mut Authz) -> AuthzGenerator {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(1);
        let mut dice = Dice(rng);
        let mut perms = Vec::new();
        let mut by_api: Vec<Vec<Perm>> = Vec::new();
        for (identifier, name, scopes) in APIS {
            authz.ensure_server(identifier, name);
            let list: Vec<Perm> = scopes
                .iter()
                .map(|s| authz.ensure_permission(identifier, s))
                .collect();
            perms.extend(&list);
            by_api.push(list);
        }
        let mut roles = Vec::new();
        for (area, area_name) in AREAS.iter().enumerate() {
            for level in LEVELS {
                let name = format!("{area_name} {level}");
                let ix = authz
                    .ensure_role(&name)
                    .expect("36 roles fit the tenant's 1,000");
                let pool = by_api.get(area).unwrap_or(&perms);
                if dice.chance(700) {
                    let count = 1 + dice.below(4) as usize;
                    let chosen: Vec<Perm> = (0..count)
                        .map(|_| pool[dice.below(pool.len() as u64) as usize])
                        .collect();
                    authz.change_role_permissions(ix, &chosen, Change::Add);
                }
                roles.push(ix);
            }
        }
        let weights = (0..roles.len()).map(|i| (roles.len() - i) as u32).collect();
        let orgs = ORGS
            .iter()
            .map(|(name, display)| authz.ensure_org_displayed(name, Some(display)))
            .collect();
        AuthzGenerator {
            dice,
            roles,
            weights,
            perms,
            orgs,
        }
    }

    /// Draws the next user's grants and gives them to `user_id` in `authz`.
    pub(crate) fn assign(&mut self, authz: &mut Authz, user_id: &str) {
        let dice = &mut self.dice;
        let count = dice.weighted(&[20, 45, 25, 10]);
        let roles: Vec<RoleIx> = (0..count)
            .map(|_| self.roles[dice.weighted(&self.weights)])
            .collect();
        if !roles.is_empty() {
            let _ = authz.assign_roles(user_id, &roles);
        }
        if dice.chance(60) {
            let count = 1 + dice.below(3) as usize;
            let perms: Vec<Perm> = (0..count)
                .map(|_| self.perms[dice.below(self.perms.len() as u64) as usize])
                .collect();
            let _ = authz.grant_permissions(user_id, &perms);
        }
        let memberships = match dice.below(100) {
            0..8 => 1,
            8 => 2,
            _ => 0,
        };
        for _ in 0..memberships {
            let org = self.orgs[dice.below(self.orgs.len() as u64) as usize];
            let member_roles: Vec<RoleIx> = (0..dice.below(3))
                .map(|_| self.roles[dice.below(MEMBER_ROLES as u64) as usize])
                .collect();
            // An organization at the facts' limit takes no more members.
            if authz.add_members(org, &[user_id.to_string()]).is_ok() && !member_roles.is_empty() {
                let _ = authz.change_member_roles(org, user_id, &member_roles, Change::Add);
            }
        }
    }
}
