//! The demo ERP's data: a fixed hash, name tables, and each entity's record as it is at a
//! version, so the same generation always looks the same.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};

use super::{DemoErp, Slot, ENTITIES};

/// splitmix64: a fixed, well-mixed hash of a number.
pub(super) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn pick<'a>(items: &[&'a str], seed: u64) -> &'a str {
    items[(seed % items.len() as u64) as usize]
}

const FIRST: &[&str] = &[
    "Anna", "Marco", "Giulia", "Luca", "Sofia", "Paolo", "Elena", "Davide", "Chiara", "Matteo",
];
const LAST: &[&str] = &[
    "Rossi", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco", "Bruno", "Gallo", "Conti",
];
const CITIES: &[&str] = &[
    "Milano", "Torino", "Bologna", "Verona", "Padova", "Firenze", "Bergamo", "Brescia",
];
const GOODS: &[&str] = &[
    "Bolt", "Hinge", "Bracket", "Valve", "Gasket", "Spring", "Clamp", "Washer", "Fitting", "Seal",
];
const SIZES: &[&str] = &["M4", "M6", "M8", "M10", "M12", "S", "L", "XL"];
const CARRIERS: &[&str] = &["BRT", "GLS", "SDA", "DHL", "TNT"];

impl DemoErp {
    /// Moves the data on one generation; returns the new one.
    pub fn tick(&self) -> u32 {
        let records = self.settings.records.max(1) as u64;
        let (adds, changes, removes) = (
            (records / 1000).max(1),
            (records / 200).max(1),
            (records / 2000).max(1),
        );
        let mut data = self.data.write().unwrap_or_else(|p| p.into_inner());
        data.generation += 1;
        let g = data.generation;
        // Never the same instant as the generation before, so `updated_since` separates them.
        let now = Utc::now()
            .max(*data.times.last().expect("generation 0") + chrono::Duration::microseconds(1));
        data.times.push(now);
        for (e, entity) in ENTITIES.iter().enumerate() {
            let slots = data.entities.get_mut(entity).expect("every entity");
            let before = slots.len() as u64;
            if before == 0 {
                continue;
            }
            let seed = (u64::from(g) << 32) | ((e as u64) << 24);
            for j in 0..changes {
                let slot = &mut slots[(mix(seed | j) % before) as usize];
                if !slot.removed {
                    slot.version += 1;
                    slot.updated_gen = g;
                }
            }
            for j in 0..removes {
                let slot = &mut slots[(mix(seed | (1 << 20) | j) % before) as usize];
                if !slot.removed {
                    slot.removed = true;
                    slot.updated_gen = g;
                }
            }
            for _ in 0..adds {
                slots.push(Slot {
                    version: 0,
                    updated_gen: g,
                    removed: false,
                });
            }
        }
        g
    }

    /// Moves the data on one generation in which exactly `count` live records of `entity`
    /// (spread over all of them) change and nothing else does; returns the new generation.
    pub fn touch(&self, entity: &str, count: usize) -> u32 {
        let mut data = self.data.write().unwrap_or_else(|p| p.into_inner());
        data.generation += 1;
        let g = data.generation;
        let now = Utc::now()
            .max(*data.times.last().expect("generation 0") + chrono::Duration::microseconds(1));
        data.times.push(now);
        if let Some(slots) = data.entities.get_mut(entity) {
            let live: Vec<usize> = (0..slots.len()).filter(|&i| !slots[i].removed).collect();
            let count = count.min(live.len());
            for k in 0..count {
                // Evenly spread: every (live / count)-th record.
                let slot = &mut slots[live[k * live.len() / count.max(1)]];
                slot.version += 1;
                slot.updated_gen = g;
            }
        }
        g
    }

    /// Record `i` of `entity` as it is at `version`.
    pub(super) fn record(
        &self,
        entity: &str,
        i: usize,
        slot: Slot,
        updated_at: DateTime<Utc>,
    ) -> Value {
        let n = i as u64 + 1;
        let h = mix(n ^ 0xDE40);
        let v = u64::from(slot.version);
        let records = u64::from(self.settings.records.max(1));
        let updated_at = updated_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        match entity {
            "customers" => json!({
                "id": format!("C{n:05}"),
                "name": format!("{} {}", pick(FIRST, h), pick(LAST, h >> 8)),
                "email": format!("customer{n}@example.com"),
                "city": pick(CITIES, (h >> 16) + v),
                "vat": format!("IT{:011}", h % 100_000_000_000),
                "credit_limit_cents": 100_000 + (h % 50) * 10_000 + v * 5_000,
                "updated_at": updated_at,
            }),
            "products" => json!({
                "id": format!("P{n:05}"),
                "name": format!("{} {}", pick(GOODS, h), pick(SIZES, h >> 8)),
                "category": pick(GOODS, h >> 16).to_lowercase(),
                "unit": "pcs",
                "active": !(h + v).is_multiple_of(17),
                "updated_at": updated_at,
            }),
            // One price per product, except that every 250th price names the next product, so
            // some products have no price (the daily sync's validation finds them).
            "prices" => json!({
                "id": format!("PR{n:05}"),
                "product_id": format!("P{:05}", if n % 250 == 3 { n + 1 } else { n }),
                "price_cents": 150 + (h % 9_000) + v * 25,
                "currency": "EUR",
                "updated_at": updated_at,
            }),
            // Every 997th order is for a customer the ERP does not know.
            "orders" => {
                let customer = if n % 997 == 13 {
                    records * 10 + n
                } else {
                    1 + h % records
                };
                let lines: Vec<Value> = (0..1 + h % 4)
                    .map(|l| {
                        json!({
                            "product_id": format!("P{:05}", 1 + mix(h + l) % records),
                            "quantity": 1 + (mix(h ^ l) + v) % 20,
                        })
                    })
                    .collect();
                json!({
                    "id": format!("O{n:06}"),
                    "customer_id": format!("C{customer:05}"),
                    "date": (Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
                        + chrono::Duration::hours((n * 3) as i64)).date_naive().to_string(),
                    "status": if (slot.updated_gen > 0 && slot.version == 0) || (h + v).is_multiple_of(10) { "ready" } else { "invoiced" },
                    "lines": lines,
                    "total_cents": 1_000 + (h % 200_000) + v * 100,
                    "updated_at": updated_at,
                })
            }
            "invoices" => json!({
                "id": format!("F{n:06}"),
                "order_id": format!("O{n:06}"),
                "amount_cents": 1_000 + (h % 200_000),
                "due_date": (Utc.with_ymd_and_hms(2025, 2, 1, 0, 0, 0).unwrap()
                    + chrono::Duration::hours((n * 3) as i64)).date_naive().to_string(),
                "paid": (h + v).is_multiple_of(3),
                "updated_at": updated_at,
            }),
            _ => json!({
                "id": format!("D{n:06}"),
                "order_id": format!("O{n:06}"),
                "carrier": pick(CARRIERS, h + v),
                "packages": 1 + (h + v) % 5,
                "updated_at": updated_at,
            }),
        }
    }
}
